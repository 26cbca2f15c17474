"""Former home of ``python -m parity convert``; its names now live in modules that say what they do.

Kept so that older imports (``from parity.files import convert_file``) still work:

* :mod:`parity.convert_command`: ``convert_file``, the command's flow and its self-check;
* :mod:`parity.model_files`: reading SRC safely (sniffing, ``torch.load(weights_only=True)``, tensor guards);
* :mod:`parity.exported_files`: reading a ``.pt2`` without running code from it;
* :mod:`parity.state_dict`: a bare state dict as ``StackedRNN``, with flags for what weights cannot show;
* :mod:`parity.keras_stack`: a Keras model as ``StackedRNN``;
* :mod:`parity.destination`: DST's checks and its no-loss write;
* :mod:`parity.check`: the scale-aware tolerance.
"""
from parity.check import describe_difference, max_abs_diff
from parity.convert_command import CHECK_EXAMPLES, ConvertResult, convert_file, logits, read_source, self_check_inputs
from parity.destination import check_destination, target_kind
from parity.keras_stack import infer_from_keras
from parity.model_files import MAX_MODEL_BYTES
from parity.state_dict import Architecture, infer_from_state_dict

__all__ = ["Architecture", "ConvertResult", "convert_file", "check_destination", "target_kind",
           "infer_from_state_dict", "infer_from_keras", "read_source", "self_check_inputs", "logits",
           "max_abs_diff", "describe_difference", "CHECK_EXAMPLES", "MAX_MODEL_BYTES"]
