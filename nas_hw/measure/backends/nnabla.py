"""The ``nnabla`` backend: layers and networks timed on nnabla's own kernels (the default).

Every unit is one nnabla function (nnabla runs each function as its own kernel), rebuilt on
fresh zeroed inputs and run through the graph engine (``Variable.forward``), the path a
network's forward takes. Calling ``Function.forward`` directly costs more for some functions
(about 2x for an inference ``BatchNormalization`` on CPU), which made the per-function and
per-module estimators disagree.
"""
import nnabla as nn
import nnabla.function as function_classes
import nnabla.functions as F

from ...nnabla_nas_compat import call_module
from ..device import Device
from ..graph import functions_between, functions_of, init_unset_inputs, leaf_variables
from .base import MeasuringBackend, Prepared


def _zeroed(shape):
    v = nn.Variable(tuple(shape), need_grad=False)
    v.data.zero()
    return v


def _sink(outs):
    return outs[0] if len(outs) == 1 else F.sink(*outs)


class NnablaBackend(MeasuringBackend):
    """Times on nnabla's kernels through one :class:`~nas_hw.measure.device.Device`.

    Args:
        ext_name: ``cpu``, ``cuda`` or ``cudnn``.
        device_id: the device index.
        type_config: ``float``, ``half`` or ``mixed_half``.
        device: a :class:`~nas_hw.measure.device.Device` to use instead of the three above.

    Raises:
        ValueError: an argument is not one of the allowed values.
        ExtensionUnavailableError: the extension is missing or has no such device.
    """

    name = "nnabla"
    single_function_units = True

    def __init__(self, ext_name="cpu", device_id=0, type_config="float", device=None):
        self.device = device if device is not None else Device(ext_name, device_id, type_config)

    @property
    def fingerprint(self):
        return self.device.fingerprint

    @property
    def settings(self):
        return {"backend": self.name, "ext_name": self.device.ext_name, "device_id": self.device.device_id,
                "type_config": self.device.type_config}

    def sync(self):
        self.device.sync()

    def prepare_functions(self, funcs, inputs, outputs, input_shapes):
        """The functions rebuilt on fresh zeroed variables: ``inputs`` at ``input_shapes``, the
        constants they read (parameters) at their own shapes."""
        ctx = self.device.context
        with nn.context_scope(ctx), nn.auto_forward(False):
            fresh = {v: _zeroed(s) for v, s in zip(inputs, input_shapes)}
            for f in funcs:
                ins = [fresh[v] if v in fresh else fresh.setdefault(v, _zeroed(v.shape)) for v in f.inputs]
                fn = getattr(function_classes, f.info.type_name)(ctx, **f.info.args)
                outs = fn(*ins)
                fresh.update(zip(f.outputs, outs if isinstance(outs, (list, tuple)) else [outs]))
            sink = _sink([fresh[v] for v in outputs])
        return Prepared(lambda: sink.forward(clear_no_need_grad=True), n_kernels=len(funcs))

    def prepare_module(self, module, input_shapes):
        """``module.call`` on fresh zeroed inputs; parameters never written are zeroed; a module
        that runs no function (``Identity``, ``Dropout`` in inference) is a no-op."""
        with nn.context_scope(self.device.context), nn.auto_forward(False):
            inputs = [_zeroed(s) for s in input_shapes]
            out = call_module(module, inputs)
            outs = [v for v in (out if isinstance(out, (list, tuple)) else [out]) if isinstance(v, nn.Variable)]
            if not outs or not functions_between(outs, inputs):
                return Prepared(noop=True, n_kernels=0)
            sink = _sink(outs)
            funcs = functions_of(sink)
            for f in funcs:  # parameters that were never written
                for v in f.inputs:
                    if v.parent is None and v.data.modification_count == 0:
                        v.data.zero()
        return Prepared(lambda: sink.forward(clear_no_need_grad=True), n_kernels=len(funcs))

    def prepare_network(self, output, inputs=None):
        """``output.forward()``; inputs and parameters whose data was never set are zero-filled
        (data you did set is left as it is)."""
        funcs = functions_of(output)
        init_unset_inputs(leaf_variables(funcs))
        return Prepared(lambda: output.forward(clear_no_need_grad=True), n_kernels=len(funcs))
