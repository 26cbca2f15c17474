"""Reading a Keras model as this project's ``StackedRNN`` (the ``.keras`` side of ``python -m parity convert``).

A ``.keras`` file holds its functional graph, so nothing about the forward is assumed: the graph
must be the ``StackedRNN`` chain (one input, recurrent layers, at most ``x[:, -1]``, one ``Dense``;
``Dropout`` is skipped), and :func:`infer_from_keras` reads the readout and the nonlinearity from
it.  Any other layer or op is refused in one line that names it.
"""
from __future__ import annotations

from common.errors import ConversionError
from parity.state_dict import Architecture

__all__ = ["infer_from_keras"]


def infer_from_keras(model, nonlinearity: str | None = None, where: str = "the Keras model",
                     readout: str | None = None) -> tuple[Architecture, list[str], list[str]]:
    """Infer the StackedRNN that a Keras model is, or raise ConversionError naming the first layer that is not.

    Returns ``(architecture, one line per layer, notes)``.  The model must be a chain:
    one input, recurrent layers (``SimpleRNN``, ``GRU``, ``LSTM``, or ``Bidirectional``
    of one), all but the last returning sequences, then one ``Dense``; ``Dropout``
    layers (inference: the identity) are skipped.  The last recurrent layer may return
    its sequence if the model then takes its last step, ``x[:, -1]`` (the readout
    ``"last-output"`` of a bidirectional stack).  What the cells compute is checked
    layer by layer when the weights are mapped (``parity.weights``).
    """
    import keras
    supported = (keras.layers.SimpleRNN, keras.layers.GRU, keras.layers.LSTM)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConversionError(f"{where} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; convert maps "
                              "one input and one output (StackedRNN)")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 3:
        raise ConversionError(f"{where} takes input of shape {shape}; a recurrent stack takes (batch, time, features)")
    if shape[0] is not None:
        raise ConversionError(f"{where} declares a fixed batch size of {shape[0]} (batch_shape); StackedRNN takes "
                              "batches of any size: rebuild it with keras.Input(shape=(time, features))")

    def flat(layer):  # layers and ops (x[:, -1] is an op, not a layer), in the order they run
        for sub in getattr(layer, "operations", layer.layers):
            yield from (flat(sub) if isinstance(sub, keras.Model) else [sub])

    recurrent, dense, notes, last_step = [], None, [], None
    for layer in flat(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if not isinstance(layer, keras.layers.Layer):  # an op called on the model's tensors
            if type(layer).__name__ == "GetItem" and recurrent and dense is None and last_step is None \
                    and _takes_last_step(layer):
                last_step = layer
                continue
            raise ConversionError(f"keras op '{layer.name}' ({type(layer).__name__}) has no counterpart in "
                                  "StackedRNN (recurrent layers, then x[:, -1] at most, then one Dense); convert "
                                  "refuses it rather than change what the model computes")
        if last_step is not None and dense is None and not isinstance(layer, keras.layers.Dense):
            raise ConversionError(f"keras layer '{layer.name}' comes after '{last_step.name}' (x[:, -1]); convert "
                                  "reads x[:, -1] only between the last recurrent layer and the Dense")
        if isinstance(layer, keras.layers.Dropout):
            notes.append(f"'{layer.name}' ({type(layer).__name__}) acts in training only: not carried over")
            continue
        if isinstance(layer, (keras.layers.Bidirectional, *supported)):
            inner = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
            if not isinstance(inner, supported):
                raise ConversionError(f"keras layer '{layer.name}' wraps {type(inner).__name__}; convert maps "
                                      "SimpleRNN, GRU and LSTM")
            if dense is not None:
                raise ConversionError(f"keras layer '{layer.name}' comes after the Dense '{dense.name}'; convert reads "
                                      "stacked recurrent layers followed by one Dense classifier")
            recurrent.append((layer, inner))
        elif isinstance(layer, keras.layers.Dense):
            if dense is not None:
                raise ConversionError(f"keras layer '{layer.name}' is a second Dense after '{dense.name}'; convert "
                                      "reads one Dense classifier after the recurrent layers (StackedRNN)")
            if not recurrent:
                raise ConversionError(f"keras layer '{layer.name}' is a Dense before any recurrent layer; convert "
                                      "reads stacked recurrent layers followed by one Dense classifier")
            dense = layer
        else:
            raise ConversionError(f"keras layer '{layer.name}' ({type(layer).__name__}) has no counterpart in "
                                  "StackedRNN (recurrent layers, then one Dense); convert refuses it rather than "
                                  "change what the model computes")
    if not recurrent:
        raise ConversionError(f"{where} has no SimpleRNN, GRU or LSTM layer; convert reads stacked recurrent layers "
                              "followed by one Dense classifier")
    if dense is None:
        raise ConversionError(f"{where} has recurrent layers but no Dense after them: convert needs the classifier too")

    act = keras.activations.serialize
    first_layer, first = recurrent[0]
    lines = []
    for i, (layer, inner) in enumerate(recurrent):
        bidirectional = isinstance(layer, keras.layers.Bidirectional)
        last = i == len(recurrent) - 1
        if inner.return_state:
            raise ConversionError(f"keras layer '{layer.name}' has return_state=True; StackedRNN passes only the "
                                  "outputs on")
        if last and inner.return_sequences and last_step is None:
            raise ConversionError(f"keras layer '{layer.name}' is the last recurrent layer but returns the whole "
                                  "sequence (return_sequences=True); StackedRNN's classifier reads the last step")
        if last and last_step is not None and not inner.return_sequences:
            raise ConversionError(f"keras op '{last_step.name}' takes x[:, -1] of '{layer.name}', which returns one "
                                  "step already (return_sequences=False); convert reads x[:, -1] of a sequence only")
        if type(inner) is not type(first) or inner.units != first.units or inner.use_bias != first.use_bias \
                or bidirectional != isinstance(first_layer, keras.layers.Bidirectional) \
                or act(inner.activation) != act(first.activation):
            raise ConversionError(
                f"keras layer '{layer.name}' ({_describe_keras(layer, inner)}) differs from '{first_layer.name}' "
                f"({_describe_keras(first_layer, first)}); convert maps stacks of equal layers (StackedRNN)")
        lines.append(f"{layer.name}: {_describe_keras(layer, inner)} -> rnns.{i}")
    lines.append(f"{dense.name}: Dense({dense.units}"
                 + (f", activation={act(dense.activation)!r}" if act(dense.activation) != "linear" else "")
                 + (", use_bias=False" if not dense.use_bias else "") + ") -> fc")
    if dense.use_bias is False:
        raise ConversionError(f"keras layer '{dense.name}' has use_bias=False; StackedRNN's Linear has a bias")

    cell = {"SimpleRNN": "rnn", "GRU": "gru", "LSTM": "lstm"}[
        next(c.__name__ for c in supported if isinstance(first, c))]
    activation = act(first.activation) if cell == "rnn" else "tanh"
    if cell == "rnn" and activation not in ("tanh", "relu"):
        raise ConversionError(f"keras layer '{first_layer.name}' uses activation={activation!r}; torch's nn.RNN "
                              "offers tanh and relu only")
    if nonlinearity is not None and nonlinearity != activation:
        raise ConversionError(f"--nonlinearity {nonlinearity} contradicts {where}, whose layers use "
                              f"activation={activation!r}; leave the flag out")
    bidirectional = isinstance(first_layer, keras.layers.Bidirectional)
    found = "last-output" if bidirectional and last_step is not None else "h_n"
    if readout is not None and bidirectional and readout != found:
        reads = ("takes x[:, -1] of the last layer's sequence" if found == "last-output"
                 else "reads each direction's final state (return_sequences=False)")
        raise ConversionError(f"--readout {readout} contradicts {where}, which {reads}: readout {found}; leave "
                              "the flag out")
    if last_step is not None:
        lines.insert(len(lines) - 1, f"{last_step.name}: x[:, -1]" + (" -> readout='last-output'" if bidirectional
                                                                       else " (the last step)"))
    arch = Architecture(input_size=int(shape[2]), hidden_size=int(first.units), num_layers=len(recurrent),
                        num_classes=int(dense.units), cell=cell, bidirectional=bidirectional,
                        nonlinearity=activation, bias=bool(first.use_bias), readout=found)
    return arch, lines, notes


def _takes_last_step(op) -> bool:
    """Whether a Keras ``GetItem`` op is ``x[:, -1]`` (or ``x[:, -1, :]``)."""
    try:
        key = op._inbound_nodes[0].arguments.args[1]
    except (AttributeError, IndexError):
        return False
    key = tuple(key) if isinstance(key, (list, tuple)) else (key,)
    everything = slice(None, None, None)
    return key in ((everything, -1), (everything, -1, everything))


def _describe_keras(layer, inner) -> str:
    import keras
    act = keras.activations.serialize
    text = f"{type(inner).__name__}({inner.units}, activation={act(inner.activation)!r}"
    text += "" if inner.use_bias else ", use_bias=False"
    text += ", return_sequences=True)" if inner.return_sequences else ")"
    return f"Bidirectional({text})" if isinstance(layer, keras.layers.Bidirectional) else text
