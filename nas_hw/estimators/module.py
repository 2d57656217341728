"""Layer-based latency per active leaf module (``LatencyEstimator``)."""
import logging
import types
import weakref
from collections import Counter, OrderedDict

import nnabla as nn

from .. import nnabla_nas_compat as nnas
from ..errors import GraphNotBuiltError, MeasurementError
from ..measure.graph import functions_between, walk_inputs
from ..measure.signature import function_signature, module_signature, variable_dtype, with_batch
from ..measure.store import noop_stats
from .layer import LayerEstimator
from .memo import EstimateMemo
from .plan import ArchitecturePlan, Unit
from .recording import check_choices, record, sampling_mixed_ops

logger = logging.getLogger(__name__)

_PLANS_PER_MODEL = 8  # (input shapes, MixedOp modes) combinations kept per model


class _ModelState:
    """What the estimator keeps per model (weakly keyed: it dies with the model)."""

    __slots__ = ("static", "mixed_ops", "names", "plans", "memo")

    def __init__(self, net):
        self.static = nnas.is_static(net)
        self.mixed_ops = [m for _, m in net.get_modules() if nnas.is_mixed_op(m)]
        # The model itself is left out: a value that refers to its weak key would keep it alive.
        self.names = {m: (n or type(m).__name__) for n, m in net.get_modules() if m is not net}
        self.plans = OrderedDict()  # (input shapes, modes) -> ArchitecturePlan
        self.memo = EstimateMemo()  # estimates made without a plan, by architecture key


class LatencyEstimator(LayerEstimator):
    """Estimates a model's latency as the sum of its active leaf modules' latencies (each leaf
    measured once on its own, forward only, in inference mode) plus the operations that run
    outside any leaf module (a residual addition, a sum of DARTS branches), measured per function.

    Modules that run no function (``Identity``, ``Dropout`` in inference) are recorded as
    true no-ops (0, flagged ``noop`` in :attr:`breakdown`), never as swallowed errors.

    The model must have been called once (``net(x)``) so its modules know their input shapes.
    The first query of a model (per input shapes and MixedOp modes) rebuilds it once with every
    candidate of every sampling MixedOp and keeps an :class:`~nas_hw.estimators.plan.ArchitecturePlan`:
    later queries, of any architecture of that space, read each MixedOp's current choice and
    add memoised costs, without rebuilding anything. Static-graph models (nnabla_nas's
    ``zoph``, ``random_wired``) are estimated from the graph they last built.

    With a backend that fuses functions across modules (``backend="onnxruntime"``: a
    convolution module, its batch normalization and its activation run as one kernel), every
    query rebuilds the model and costs its graph by the runtime's units, as
    :class:`LatencyGraphEstimator` does; :meth:`predict` of one leaf still measures that module
    alone.

    The estimator holds models weakly: nothing it keeps outlives the model. Call ``reset()``
    after changing a model's structure in place.

    Example:
        >>> est = LatencyEstimator(ext_name="cpu", device_id=0)
        >>> out = net(nn.Variable((1, 3, 32, 32)))
        >>> latency_ms = est.get_estimation(net)
    """

    def __init__(self, *args, **kwargs):
        self._pending = None  # blocks of the last plan query, until `breakdown` is read
        super().__init__(*args, **kwargs)
        self._models = weakref.WeakKeyDictionary()

    @property
    def breakdown(self):
        """The layers of the last estimate (:class:`~nas_hw.estimators.layer.LayerCost`)."""
        if self._pending is not None:  # a plan query only noted its blocks: list their layers now
            layers = []
            for block in self._pending:
                layers.extend(block.costs)
            self._breakdown, self._pending = layers, None
        return self._breakdown

    @breakdown.setter
    def breakdown(self, layers):
        self._breakdown, self._pending = layers, None

    def reset(self):
        super().reset()
        self._models = weakref.WeakKeyDictionary()

    # -- one leaf module ------------------------------------------------------------------
    def _measure_module(self, m, shapes, label=None):
        """Times the leaf module ``m`` alone on zeroed inputs of ``shapes``, forward only, in
        inference mode (the module's own flag is put back), on the estimator's backend."""
        def run():
            flags = nnas.training_flags(m)
            m.apply(training=False)
            try:
                prepared = self.backend.prepare_module(m, shapes)
                if prepared.noop:
                    return noop_stats(), True
                return prepared.adjust(self._time(prepared.run, label=label)), False
            finally:
                nnas.restore_training_flags(flags)
        return self._guard(run)

    def _leaf_unit(self, m, name, input_shapes):
        shapes = [with_batch(s, self.batch_size) for s in input_shapes]
        sig = module_signature(m, shapes)
        return Unit(name, sig, self._measure_module(m, shapes, sig))

    def _function_unit(self, name, f, inputs):
        """A unit for the nnabla function ``f`` that keeps no graph object (only its type,
        arguments and input shapes)."""
        info = f.info
        shapes = tuple(tuple(v.shape) for v in inputs)
        dtypes = tuple(variable_dtype(v) for v in inputs)
        key = (info.type_name, repr(info.args), shapes, dtypes)
        sig = self._signatures.get(key)
        if sig is None:
            sig = self._signatures[key] = function_signature(f, shapes, dtypes)
        # placeholders stand for the variables: the backend rebuilds the function on fresh ones
        stand_in = types.SimpleNamespace(info=types.SimpleNamespace(type_name=info.type_name, args=dict(info.args)),
                                         inputs=[object() for _ in shapes], outputs=[object() for _ in f.outputs])
        return Unit(name, sig, self._measure_function(stand_in, shapes, sig))

    def _sum(self, units):
        total = 0.0
        for u in units:
            cost = self._cost(u.name, u.signature, u.measure)
            if cost is not None:
                total += cost
        return total

    def predict(self, module):
        """Latency of one leaf module at its recorded input shapes, in ``time_scale``."""
        if not module.input_shapes:
            raise GraphNotBuiltError(f"module {type(module).__name__} has no input shapes: "
                                     "build the graph (net(x)) before estimating")
        self._begin()
        name = module.name or type(module).__name__
        cost = self._sum([self._leaf_unit(module, name, module.input_shapes)])
        if self.failures:
            raise MeasurementError(self.failures[-1].error, layer=self.failures[-1].name,
                                   signature=self.failures[-1].signature)
        return self._finish(cost)

    # -- a whole model ----------------------------------------------------------------------
    def get_estimation(self, net):
        """Latency of the whole model (active leaves + operations outside modules).

        Raises:
            GraphNotBuiltError: the model was never called, so no input shapes exist.
            MeasurementError: a layer could not be measured (``on_error='raise'``).
            MissingMeasurementsError: offline and some layers are not in the cache.
        """
        state = self._models.get(net) if hasattr(net, "__weakref__") else None
        if state is None:
            if not hasattr(net, "get_modules") or not hasattr(net, "input_shapes"):
                raise TypeError(f"LatencyEstimator needs an nnabla_nas-style Module, got {type(net).__name__}")
            if nnas.is_mixed_op(net):  # a lone MixedOp: rebuilt every time
                return self._estimate_units(self._units_by_rebuild(net, sampling_mixed_ops(net)))
            state = self._state(net)
        if not self.backend.single_function_units:
            return self._estimate_fused(net)
        if state is not None and state.static or state is None and nnas.is_static(net):
            return self._estimate_static(net)
        if not net.input_shapes:
            raise GraphNotBuiltError(f"model {type(net).__name__} was never called, so its modules have no "
                                     "input shapes: build the graph once (out = net(x)) before estimating")
        if state is None:  # a model that cannot be held weakly: rebuilt every time
            return self._estimate_units(self._units_by_rebuild(net, sampling_mixed_ops(net)))
        key = (tuple([tuple(s) for s in net.input_shapes]), nnas.modes(state.mixed_ops))
        plan = state.plans.get(key)
        if plan is None:
            mixed_ops = [m for m, mode in zip(state.mixed_ops, key[1]) if mode != "full"]
            check_choices(mixed_ops)
            plan = self._make_plan(net, mixed_ops, state.names)
            state.plans[key] = plan
            while len(state.plans) > _PLANS_PER_MODEL:
                state.plans.popitem(last=False)
        choices = nnas.active_indices(plan.mixed_ops)
        if None in choices:
            check_choices(plan.mixed_ops)
        if plan.problem is not None:
            return self._memoised(state.memo, key + (choices,),
                                  lambda: self._units_by_rebuild(net, plan.mixed_ops, state.names))
        blocks = plan.blocks(choices)
        self._begin()
        total, n_layers = 0.0, 0
        for block in blocks:
            if block.costs is None:
                break
            total += block.total
            n_layers += len(block.costs)
        else:  # every block was summed before: touch nothing per layer (a search loop's query)
            self._pending = blocks
            self.cache.hits += n_layers
            return float(total)
        total = 0.0
        for block in blocks:
            total += block.resolve(self)
        return self._finish(total)

    def _state(self, net):
        state = self._models.get(net)
        if state is None:
            try:
                state = self._models[net] = _ModelState(net)
            except TypeError:  # not weak-referenceable
                return None
        return state

    def _make_plan(self, net, mixed_ops, names):
        """Builds the plan of ``net`` and checks it against a rebuild of the current architecture."""
        def leaf_unit(call):
            return self._leaf_unit(call.module, names.get(call.module, type(call.module).__name__),
                                   _shapes_of(call))
        try:
            plan = ArchitecturePlan.build(record(net, self.batch_size, mixed_ops, mixed="all"), mixed_ops,
                                          leaf_unit, self._function_unit)
        except MeasurementError as err:  # e.g. a candidate not chosen now that cannot be measured
            plan = ArchitecturePlan(mixed_ops)
            plan.problem = f"building every candidate failed ({err})"
        if plan.problem is None and mixed_ops:
            choices = [nnas.active_index(m) for m in mixed_ops]
            planned = Counter(u.signature for u in plan.units(choices))
            rebuilt = Counter(u.signature for u in self._units_by_rebuild(net, mixed_ops, names))
            if planned != rebuilt:
                plan.problem = ("its layers outside the MixedOps change with the choices "
                                f"({sum((planned - rebuilt).values())} planned layers not in a rebuild, "
                                f"{sum((rebuilt - planned).values())} the other way)")
        if plan.problem is not None:
            logger.warning("%s: every architecture is estimated by rebuilding the model, since %s",
                           type(net).__name__, plan.problem)
        return plan

    def _units_by_rebuild(self, net, mixed_ops, names=None):
        """The units of the current architecture, found by rebuilding the model (the path every
        query took before plans; kept for models a plan cannot describe, and as their check)."""
        if names is None:
            names = {m: (n or type(m).__name__) for n, m in net.get_modules()}
        check_choices(mixed_ops)
        rec = record(net, self.batch_size, mixed_ops, mixed="active")
        funcs, inputs_of, _ = walk_inputs(rec.outputs)
        # Only what the output depends on runs: a module called on a branch that no later
        # operation reads (e.g. a cell input all of whose edges chose 'zero') is left out.
        reachable = set(rec.outputs)
        for ins in inputs_of:
            reachable.update(ins)
        calls = [c for c in rec.calls if any(v in reachable for v in c.outputs)]
        inside = set()
        for c in calls:
            inside.update(functions_between(c.outputs, c.inputs))
        units = [self._leaf_unit(c.module, names.get(c.module, type(c.module).__name__),
                                 _shapes_of(c)) for c in calls]
        outside = [(f, ins) for f, ins in zip(funcs, inputs_of) if f not in inside]
        units += [self._function_unit(f"outside/{i}:{f.info.type_name}", f, ins) for i, (f, ins) in enumerate(outside)]
        return units

    def _estimate_fused(self, net):
        """On a backend that fuses functions across modules (``onnxruntime``: a convolution
        module, its batch normalization and its activation run as one kernel), the model is
        rebuilt at ``batch_size`` with the current choices and its graph costed by the runtime's
        units, as :class:`LatencyGraphEstimator` does."""
        if nnas.is_static(net) and nnas.static_output(net) is None:
            with nn.auto_forward(False):
                nnas.build_static(net)
        if not net.input_shapes:
            raise GraphNotBuiltError(f"model {type(net).__name__} was never called, so its modules have no "
                                     "input shapes: build the graph once (out = net(x)) before estimating")
        mixed_ops = sampling_mixed_ops(net)
        check_choices(mixed_ops)
        rec = record(net, self.batch_size, mixed_ops, mixed="active")
        funcs, inputs_of, _ = walk_inputs(rec.outputs)
        self._begin()
        return self._finish(self._function_costs(funcs, [], inputs=rec.inputs, inputs_of=inputs_of))

    def _estimate_static(self, net):
        """A static model (nnabla_nas.module.static) is rebuilt with each ``Join`` keeping its last
        choice (a plain rebuild would sample them anew); one never built is built once first."""
        if nnas.static_output(net) is None:
            with nn.auto_forward(False):
                nnas.build_static(net)
        state = self._state(net)
        if state is None:
            return self._estimate_units(self._units_by_rebuild(net, []))
        key = ("static", tuple(tuple(s) for s in net.input_shapes), nnas.static_choices(net))
        return self._memoised(state.memo, key, lambda: self._units_by_rebuild(net, [], state.names))

    def _estimate_units(self, units):
        self._begin()
        return self._finish(self._sum(units))

    def _memoised(self, memo, key, units_fn):
        hit = memo.get(key)
        if hit is not None:
            self._begin()
            self.breakdown = list(hit[1])
            return hit[0]
        total = self._estimate_units(units_fn())
        if not self.failures:
            memo.put(key, total, self.breakdown)
        return total

    # -- the layer contract -------------------------------------------------------------------
    def estimate_network(self, net, out, inputs):
        """Latency of the Module ``net`` (built: its modules know their input shapes)."""
        if net is None:
            raise ValueError(f"{type(self).__name__} estimates Modules, not graphs: pass the network "
                             "(calibrate with calibrate_networks or calibrate_space)")
        return self.get_estimation(net)

    def estimate_module(self, module, input_shapes):
        """Latency of ``module`` (a leaf or a composite) called on inputs of ``input_shapes``."""
        with nn.auto_forward(False), nnas.uncached_calls(module):
            module(*[nn.Variable(tuple(s), need_grad=False) for s in input_shapes])
        if len(module.modules) == 0:
            return self.predict(module)
        return self.get_estimation(module)


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _shapes_of(call):
    if call.bad:
        raise MeasurementError(f"leaf module {type(call.module).__name__} was called with a {call.bad} argument; "
                               "nas_hw measures leaf modules called on Variables (or lists of them)",
                               layer=getattr(call.module, "name", None) or type(call.module).__name__)
    return [tuple(v.shape) for v in call.inputs]
