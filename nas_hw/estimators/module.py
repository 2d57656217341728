"""Layer-based latency per active leaf module (``LatencyEstimator``)."""
import contextlib

import nnabla as nn
import nnabla.functions as F

from ..errors import GraphNotBuiltError, MeasurementError
from ..measure.graph import functions_between, walk
from ..measure.signature import module_signature, with_batch
from ..measure.store import noop_stats
from .. import nnabla_nas_compat as nnas
from .layer import LayerEstimator


def _is_leaf(m):
    return len(m.modules) == 0


@contextlib.contextmanager
def _recording_leaf_calls(net, calls):
    """Temporarily wraps each leaf module's ``call`` to record (module, inputs, outputs), and
    makes sampling MixedOps reuse their current choice instead of sampling a new one."""
    overrides = []
    for _, m in net.get_modules():
        if nnas.is_mixed_op(m) and nnas.mode(m) != "full":
            if nnas.active_index(m) is None:
                raise GraphNotBuiltError(f"MixedOp {m.name or m!r} has no active candidate yet: "
                                         "build the graph (net(x)) before estimating")
            overrides.append((m, nnas.run_active(m)))
        elif _is_leaf(m):
            original = m.call

            def recorder(*args, m=m, original=original, **kwargs):
                out = original(*args, **kwargs)
                outs = list(out) if isinstance(out, (list, tuple)) else [out]
                calls.append((m, list(args), outs))
                return out

            overrides.append((m, recorder))
    with nnas.overriding_calls(overrides):
        yield


class LatencyEstimator(LayerEstimator):
    """Estimates a model's latency as the sum of its active leaf modules' latencies (each leaf
    measured once on its own, forward only, in inference mode) plus the operations that run
    outside any leaf module (a residual addition, a sum of DARTS branches), measured per function.

    Modules that run no function (``Identity``, ``Dropout`` in inference) are recorded as
    true no-ops (0, flagged ``noop`` in :attr:`breakdown`), never as swallowed errors.

    The model must have been called once (``net(x)``) so its modules know their input shapes;
    the graph is rebuilt at those shapes (MixedOps keep their current choice) to find the
    active modules and the operations between them.

    With a backend that fuses functions across modules (``backend="onnxruntime"``: a
    convolution module, its batch normalization and its activation run as one kernel), the
    rebuilt graph is costed by the runtime's units, as :class:`LatencyGraphEstimator` does;
    :meth:`predict` of one leaf still measures that module alone.

    Estimates are memoised per architecture (the model, its input shapes and every MixedOp's
    mode and choice), so querying an architecture again costs a few microseconds. Call
    ``reset()`` after changing a model's structure in place.

    Example:
        >>> est = LatencyEstimator(ext_name="cpu", device_id=0)
        >>> out = net(nn.Variable((1, 3, 32, 32)))
        >>> latency_ms = est.get_estimation(net)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._mixed_ops = {}  # model -> its MixedOps, the parts of the architecture key

    def reset(self):
        super().reset()
        self._mixed_ops.clear()

    def _arch_key(self, net):
        ops = self._mixed_ops.get(net)
        if ops is None:
            ops = self._mixed_ops[net] = [m for _, m in net.get_modules() if nnas.is_mixed_op(m)]
        return (net, tuple(tuple(s) for s in net.input_shapes),
                tuple((nnas.mode(m), nnas.active_index(m)) for m in ops))

    def _module_cost(self, m, name, input_shapes):
        shapes = [with_batch(s, self.batch_size) for s in input_shapes]
        sig = module_signature(m, shapes)

        def run():
            prepared = self.backend.prepare_module(m, shapes)
            if prepared.noop:
                return noop_stats(), True
            return prepared.adjust(self._time(prepared.run)), False
        return self._cost(name, sig, self._guard(run))

    def predict(self, module):
        """Latency of one leaf module at its recorded input shapes, in ``time_scale``."""
        if not module.input_shapes:
            raise GraphNotBuiltError(f"module {type(module).__name__} has no input shapes: "
                                     "build the graph (net(x)) before estimating")
        self._begin()
        state = module.training
        module.apply(training=False)
        try:
            cost = self._module_cost(module, module.name or type(module).__name__, module.input_shapes)
        finally:
            module.apply(training=state)
        if cost is None and self.failures:
            raise MeasurementError(self.failures[-1].error, layer=self.failures[-1].name,
                                   signature=self.failures[-1].signature)
        return self._finish(cost)

    def get_estimation(self, net):
        """Latency of the whole model (active leaves + operations outside modules).

        Raises:
            GraphNotBuiltError: the model was never called, so no input shapes exist.
            MeasurementError: a layer could not be measured (``on_error='raise'``).
            MissingMeasurementsError: offline and some layers are not in the cache.
        """
        if not hasattr(net, "get_modules") or not hasattr(net, "input_shapes"):
            raise TypeError(f"LatencyEstimator needs an nnabla_nas-style Module, got {type(net).__name__}")
        if not net.input_shapes:
            raise GraphNotBuiltError(f"model {type(net).__name__} was never called, so its modules have no "
                                     "input shapes: build the graph once (out = net(x)) before estimating")
        key = self._arch_key(net)
        hit = self._estimates.get(key)
        if hit is not None:
            self._begin()
            self.breakdown = list(hit[1])
            return hit[0]
        modules = list(net.get_modules())
        names = {m: (n or type(m).__name__) for n, m in modules}
        state = net.training
        # The recording pass rebuilds the model at ``batch_size`` (every shape then is the one
        # measured, whatever axis the batch sits on inside the model); calling modules records
        # input shapes on them, which are put back afterwards.
        recorded_shapes = [(m, nnas.recorded_input_shapes(m)) for _, m in modules]
        calls = []
        net.apply(training=False)
        try:
            with nn.auto_forward(False), _recording_leaf_calls(net, calls):
                inputs = [nn.Variable(with_batch(s, self.batch_size), need_grad=False) for s in net.input_shapes]
                built_shapes = [tuple(s) for s in net.input_shapes]
                try:
                    out = net(*inputs)
                except Exception as err:
                    if all(tuple(v.shape) == s for v, s in zip(inputs, built_shapes)):
                        raise
                    raise MeasurementError(f"model {type(net).__name__} cannot be rebuilt at batch_size="
                                           f"{self.batch_size} ({type(err).__name__}: {err})") from err
                finally:
                    for m, shapes in recorded_shapes:
                        nnas.restore_input_shapes(m, shapes)
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
            funcs, _ = walk(outs[0] if len(outs) == 1 else F.sink(*outs))
            # Only what the output depends on runs: a module called on a branch that no later
            # operation reads (e.g. a cell input all of whose edges chose 'zero') is left out.
            reachable = set(outs)
            for f in funcs:
                reachable.update(f.inputs)
            calls = [c for c in calls if any(v in reachable for v in c[2])]
            inside = set()
            for _, ins, leaf_outs in calls:
                inside.update(functions_between(leaf_outs, ins))
            outside = [f for f in funcs if f not in inside]
            self._begin()
            total = 0.0
            if not self.backend.single_function_units:
                # the runtime fuses across modules (a convolution module, its batch normalization
                # and its activation run as one kernel): cost the graph by the runtime's units
                total += self._function_costs(funcs, [], inputs=inputs)
            else:
                for m, ins, _ in calls:
                    cost = self._module_cost(m, names.get(m, type(m).__name__), [v.shape for v in ins])
                    total += cost or 0.0
                total += self._function_costs(outside, [], prefix="outside/")  # already at batch_size
        finally:
            net.apply(training=state)
        total = self._finish(total)
        if not self.failures:
            self._estimates.put(key, total, self.breakdown)
        return total

    def estimate_network(self, net, out, inputs):
        """Latency of the Module ``net`` (built: its modules know their input shapes)."""
        if net is None:
            raise ValueError(f"{type(self).__name__} estimates Modules, not graphs: pass the network "
                             "(calibrate with calibrate_networks or calibrate_space)")
        return self.get_estimation(net)

    def estimate_module(self, module, input_shapes):
        """Latency of ``module`` (a leaf or a composite) called on inputs of ``input_shapes``."""
        with nn.auto_forward(False):
            module(*[nn.Variable(tuple(s), need_grad=False) for s in input_shapes])
        if len(module.modules) == 0:
            return self.predict(module)
        return self.get_estimation(module)
