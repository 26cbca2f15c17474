"""Read a Keras 3 model's functional graph: its steps in the order they run, and what each step reads.

``convert_keras_model`` builds the torch module from the Keras model's own graph, so
whatever the author wired (a branch, a concatenation, ``x[:, -1]``, ``ops.mean(x, axis=1)``)
is what gets converted, and anything it cannot map is refused by name.

Keras 3 keeps a functional model's graph in ``model._nodes_by_depth``: each depth holds
the calls (:class:`keras.src.ops.node.Node`) whose inputs all come from deeper ones, so
walking the depths from the deepest to 0 is a topological order.  Each node records the
operation (a layer or a ``keras.ops`` call), its arguments (``node.arguments``, with the
symbolic tensors in it) and its output tensors.  Tensors are identified by ``id()``, as
Keras's own ``Function._run_through_graph`` does.  This is the same reading Keras uses to
run the model; the serialized config would only repeat it with layer names as strings.

A ``keras.Sequential`` is walked through the functional model Keras builds for it
(``model._functional``, there once the model knows its input shape).  A nested
functional or Sequential model is one step whose graph the converter inlines.
Subclassed models have no graph to read: their ``call`` is Python code.
"""
from __future__ import annotations

import dataclasses

from common.errors import ConversionError

__all__ = ["Step", "graph_of", "steps", "tensors_in", "is_model"]


@dataclasses.dataclass
class Step:
    """One call in the graph: ``outputs = operation(*args, **kwargs)``."""
    operation: object     # a keras Layer, or a keras.ops Operation (GetItem, Mean, ...)
    args: tuple           # as called, symbolic tensors in place
    kwargs: dict          # as called; ``mask`` and ``training`` included when Keras passes them
    outputs: list         # the KerasTensors it produces

    @property
    def name(self) -> str:
        return self.operation.name

    @property
    def kind(self) -> str:
        return type(self.operation).__name__

    def describe(self) -> str:
        import keras
        what = "layer" if isinstance(self.operation, keras.layers.Layer) else "op"
        return f"keras {what} '{self.name}' ({self.kind})"


def is_model(obj) -> bool:
    import keras
    return isinstance(obj, keras.Model)


def graph_of(model, where: str):
    """The functional model whose graph describes ``model``; ConversionError for a subclassed one."""
    import keras
    from keras.src.models.functional import Functional
    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise ConversionError(f"{where} is a Sequential model that does not know its input shape yet; start it "
                                  "with keras.Input(shape=...) or call it once on a batch, then convert it")
        return functional
    if isinstance(model, Functional):
        return model
    raise ConversionError(f"{where} is a subclassed keras.Model ({type(model).__name__}), whose call() is Python "
                          "code with no graph to read; rebuild it with the functional API (keras.Input -> layers "
                          "-> keras.Model(inputs, outputs)) or keras.Sequential")


def tensors_in(value) -> list:
    """The symbolic tensors in an argument (a tensor, or lists/tuples/dicts of them)."""
    import keras
    if isinstance(value, keras.KerasTensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


def steps(functional) -> list[Step]:
    """The calls of ``functional``'s graph that its outputs depend on, in an order they can run.

    Input layers are left out (the caller binds the model's inputs).  A call whose only use
    is a ``mask=`` argument (Keras computes ``Embedding(mask_zero=True)``'s mask as its own
    ``not_equal`` call) is left out too: the caller decides what a mask means.
    """
    all_steps = []
    for depth in sorted(functional._nodes_by_depth, reverse=True):
        for node in functional._nodes_by_depth[depth]:
            if node.is_input:
                continue
            all_steps.append(Step(node.operation, tuple(node.arguments.args), dict(node.arguments.kwargs),
                                  list(node.outputs)))
    # Keep only what the outputs need, following data arguments (not masks) backwards.
    producer = {id(t): s for s in all_steps for t in s.outputs}
    needed, todo = set(), [t for t in tensors_in(functional.outputs)]
    while todo:
        t = todo.pop()
        s = producer.get(id(t))
        if s is None or id(s) in needed:
            continue
        needed.add(id(s))
        todo += tensors_in(s.args) + tensors_in({k: v for k, v in s.kwargs.items() if k != "mask"})
    return [s for s in all_steps if id(s) in needed]
