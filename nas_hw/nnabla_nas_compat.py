"""The one door to nnabla_nas: every read or write of a MixedOp's state goes through here.

nas_hw reaches nnabla_nas models by duck typing: a MixedOp is anything with candidates
(``_ops``), an architecture parameter (``_alpha``) and a mode (``_mode``), so models built
from nnabla_nas's modules work without importing nnabla_nas. Public API is used where
nnabla_nas has one (``active_index``); the private attributes it lacks an API for are read
and written here alone.

The nnabla-nas 0.15.0 wheel on PyPI lacks one subpackage,
``nnabla_nas.contrib.classification.ofa.networks``, which ``nnabla_nas/contrib/__init__.py``
imports, so no SearchNet and not the Runner import from it. :func:`install_ofa_placeholder`
(run by ``import nas_hw``) registers a placeholder under that name when, and only when, the
real subpackage is missing: the other SearchNets and the Runner then import, and using OFA
raises :class:`MissingOFAError` naming the missing module.
"""
import contextlib
import importlib.util
import os
import sys
import types

import numpy as np

OFA_NETWORKS = "nnabla_nas.contrib.classification.ofa.networks"


class MissingOFAError(ImportError):
    """OFA was used with an nnabla_nas installation that lacks its networks subpackage."""


class _MissingOFANetwork:
    """Stands for ``ofa_mbv3``/``ofa_xception``/``ofa_resnet50``: any use raises."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        raise MissingOFAError(
            f"{OFA_NETWORKS}.{self._name} is not installed: the nnabla-nas 0.15.0 wheel on PyPI lacks "
            f"the subpackage {OFA_NETWORKS} (nas_hw put a placeholder there so the other SearchNets "
            "import); install nnabla-nas from source for the OFA spaces")

    def __repr__(self):
        return f"<missing {OFA_NETWORKS}.{self._name}>"


def ofa_networks_missing():
    """True when nnabla_nas is installed without its OFA networks subpackage (the PyPI wheel)."""
    spec = importlib.util.find_spec("nnabla_nas")  # the top-level package only: nothing is imported
    if spec is None or not spec.submodule_search_locations:
        return False
    root = list(spec.submodule_search_locations)[0]
    path = os.path.join(root, *OFA_NETWORKS.split(".")[1:])
    return not (os.path.isdir(path) or os.path.isfile(path + ".py"))


def install_ofa_placeholder():
    """Registers the OFA placeholder when the real subpackage is missing; returns whether it did.

    Nothing changes where nnabla_nas is installed complete, or not at all."""
    if OFA_NETWORKS in sys.modules or not ofa_networks_missing():
        return False
    module = types.ModuleType(OFA_NETWORKS)
    module.__doc__ = "nas_hw's placeholder for a subpackage the nnabla-nas 0.15.0 wheel lacks."
    for name in ("ofa_mbv3", "ofa_xception", "ofa_resnet50"):
        setattr(module, name, _MissingOFANetwork(name))
    sys.modules[OFA_NETWORKS] = module
    return True


def is_mixed_op(m):
    """True for an nnabla_nas MixedOp (or anything shaped like one)."""
    return hasattr(m, "_ops") and hasattr(m, "_alpha") and hasattr(m, "_mode")


def candidates(m):
    """The candidate modules of a MixedOp, in index order."""
    return list(m._ops)


def alpha(m):
    """The architecture parameter of a MixedOp (maybe shared with others)."""
    return m._alpha


def mode(m):
    """The MixedOp's mode (``full``, ``sample``, ``max`` or ``fair``)."""
    return m._mode


def set_mode(m, value):
    """Sets the MixedOp's mode (the caller checks ``value``)."""
    m._mode = value


def active_index(m):
    """The candidate the MixedOp last ran (``None`` before a sampling mode built a graph)."""
    return m.active_index if hasattr(type(m), "active_index") else m._active


def modes(mixed_ops):
    """The mode of each MixedOp, as a tuple (one call per query of a whole model)."""
    return tuple([m._mode for m in mixed_ops])


def active_indices(mixed_ops):
    """The current choice of each MixedOp, as a tuple (``None`` where none was made yet)."""
    return tuple([m.active_index if hasattr(type(m), "active_index") else m._active for m in mixed_ops])


def set_active_index(m, index):
    """Makes candidate ``index`` the active one without touching the candidates' flags.

    nnabla_nas's ``active_index`` setter also flips ``is_active`` and ``need_grad`` of every
    candidate; a temporary choice (a table being built, an estimate) must leave those alone.
    """
    m._active = index


def rng(m):
    """The random generator a sampling MixedOp draws with."""
    return m._rng


def set_rng(m, generator):
    """Gives the MixedOp its own random generator (for reproducible sampling)."""
    m._rng = generator


def input_shapes(m):
    """The input shapes the module saw when its graph was last built (``[]`` if never)."""
    return [tuple(int(d) for d in s) for s in m.input_shapes]


def recorded_input_shapes(m):
    """The raw recorded input shapes of a module (``None`` if never recorded), to put back."""
    return m.__dict__.get("_input_shapes")


def restore_input_shapes(m, shapes):
    """Puts back what :func:`recorded_input_shapes` returned."""
    if shapes is None:
        m.__dict__.pop("_input_shapes", None)
    else:
        m.__dict__["_input_shapes"] = shapes


@contextlib.contextmanager
def overriding_calls(overrides):
    """Runs each ``(module, fn)``'s ``fn`` in place of ``module.call`` while the block is open
    (an instance attribute, as nnabla_nas's own fast mode sets), then restores what was there."""
    saved = [(m, m.__dict__.get("call")) for m, _ in overrides]
    for m, fn in overrides:
        m.__dict__["call"] = fn
    try:
        yield
    finally:
        for m, previous in reversed(saved):
            if previous is None:
                m.__dict__.pop("call", None)
            else:
                m.__dict__["call"] = previous


def run_active(m):
    """A ``call`` replacement running only the MixedOp's active candidate (no new sampling)."""
    ops = m._ops
    return lambda x: ops[active_index(m)](x)


@contextlib.contextmanager
def fixed_choices(mixedops, choices):
    """Makes each MixedOp run only candidate ``choices[i]`` (a derived subnetwork) while the
    block is open; the MixedOps' mode, choice and call are restored afterwards."""
    saved, overrides = [], []
    for m, c in zip(mixedops, choices):
        saved.append((m, m._mode, m._active))
        m._mode, m._active = "sample", int(c)
        overrides.append((m, lambda x, ops=m._ops, c=int(c): ops[c](x)))
    try:
        with overriding_calls(overrides):
            yield
    finally:
        for m, previous_mode, previous_active in reversed(saved):
            m._mode, m._active = previous_mode, previous_active


# -- deriving a fixed network and the spaces' own rules -------------------------------------

def is_zero_op(m):
    """True for nnabla_nas's ``Zero`` (the "no edge" candidate of DARTS cells)."""
    from nnabla_nas.module import Zero

    return isinstance(m, Zero)


def replace_mixed_ops(net, choices):
    """Replaces, in place, each MixedOp of ``net`` (``get_modules()`` order) by its candidate
    ``choices[i]``, as nnabla_nas's own TrainNets do (``module._mixed = module._mixed._ops[idx]``),
    and removes the architecture parameters (the MixedOps', and those the SearchNet declares with
    ``get_arch_parameters``, e.g. DARTS's shared alphas of a cell type it has no cell of) from
    the module tree: what is left is the fixed network of those choices.

    Raises:
        ValueError: ``choices`` does not hold one index per MixedOp.
    """
    found = [(name, m) for name, m in net.get_modules() if is_mixed_op(m)]
    if len(choices) != len(found):
        raise ValueError(f"choices must hold one candidate index per MixedOp ({len(found)}), got {len(choices)}")
    alphas = {id(alpha(m)) for _, m in found} | {id(p) for p in declared_arch_parameters(net)}
    modules = dict(net.get_modules())
    for (name, m), c in zip(found, choices):
        if not name:
            raise ValueError("the network itself is a MixedOp: there is nothing to derive it into")
        parent, key = name.rsplit("/", 1) if "/" in name else ("", name)
        ops = candidates(m)
        if not 0 <= int(c) < len(ops):
            raise ValueError(f"choice {c!r} of {name!r} must index one of its {len(ops)} candidates")
        modules[parent].modules[key] = ops[int(c)]  # same key, same place in the call order
    for _, module in net.get_modules():
        for key in [k for k, p in module.parameters.items() if id(p) in alphas]:
            del module.parameters[key]
    return net


def declared_arch_parameters(net):
    """The parameters ``net.get_arch_parameters()`` names (nnabla_nas's API; ``[]`` where the
    model has none or, as FairNAS's base class, raises ``NotImplementedError``)."""
    getter = getattr(net, "get_arch_parameters", None)
    if getter is None:
        return []
    try:
        return list(getter().values())
    except NotImplementedError:
        return []


def darts_nodes(model):
    """The incoming edges of every node of nnabla_nas's DARTS cells (``darts.SearchNet``, also
    PNAS's): one list of MixedOps per node, cell after cell; ``[]`` for a model without such cells.

    Node ``i`` of a cell sums ``i + 2`` edges (the two cell inputs and the earlier nodes), held in
    ``cell._blocks`` in that order (nnabla_nas's ``darts/modules.py: Cell``)."""
    module = sys.modules.get("nnabla_nas.contrib.classification.darts.modules")
    if module is None:  # never imported: no model can hold one of its cells
        return []
    nodes = []
    for _, m in model.get_modules():
        if isinstance(m, module.Cell):
            blocks, offset = list(m._blocks), 0
            for i in range(m._num_choices):
                nodes.append([blocks[offset + j]._mixed for j in range(i + 2)])
                offset += i + 2
    return nodes


def darts_candidate_names():
    """Names of the DARTS edge candidates, in the order nnabla_nas builds them (``none`` last)."""
    from nnabla_nas.contrib.classification.darts.modules import CANDIDATES

    return list(CANDIDATES)


def searchnet_candidate_names(model, mixedop):
    """The names nnabla_nas gives the candidates of ``mixedop`` in ``model``, or ``None``.

    DARTS / PNAS edges take ``darts.modules.CANDIDATES``'s names; MobileNet and FairNAS blocks
    take the SearchNet's ``candidates`` list, plus ``skip_connect`` where the block has it."""
    n = len(candidates(mixedop))
    if darts_nodes(model):
        names = darts_candidate_names()
        return names if len(names) == n else None
    listed = getattr(model, "_candidates", None)
    if isinstance(listed, (list, tuple)) and n in (len(listed), len(listed) + 1):
        return list(listed) + ["skip_connect"] * (n - len(listed))
    return None


# -- nnabla_nas's Runner (nnabla_nas.runner.searcher) -----------------------------------------

#: What nnabla_nas's searchers write in their output directory (nas_hw's callbacks must not).
RUNNER_OUTPUTS = ("arch.json", "arch.h5", "weights.h5", "checkpoint", "tensorboard")


def runner_algorithm(runner):
    """``'darts'``, ``'proxyless'`` or ``'fairnas'`` for nnabla_nas's searchers (their
    subclasses included), else ``None``."""
    from nnabla_nas.runner.searcher import DartsSearcher, FairNasSearcher, ProxylessNasSearcher

    for cls, name in ((DartsSearcher, "darts"), (ProxylessNasSearcher, "proxyless"), (FairNasSearcher, "fairnas")):
        if isinstance(runner, cls):
            return name
    return None


def runner_output_dir(runner):
    """The absolute directory the runner writes its logs and checkpoints to."""
    return runner._abs_output_path


def runner_meters(runner):
    """The epoch's running averages the runner's monitor holds, ``{name: float}``."""
    return {name: float(np.asarray(m.avg).reshape(-1)[0]) for name, m in runner.monitor.meters.items()
            if getattr(m, "count", 0)}


def runner_placeholder(runner, key):
    """The runner's ``placeholder[key]`` dict (``inputs``, ``targets``, ``outputs``, ``loss``...)."""
    return runner.placeholder[key]


def runner_reward(runner):
    """ProxylessNAS's moving-average reward (``None`` before the first architecture step)."""
    reward = getattr(runner, "_reward", None)
    return None if reward is None else float(np.asarray(reward.data).reshape(-1)[0])


@contextlib.contextmanager
def hydra_run_dir(output_dir):
    """Runs the block with a Hydra run configuration whose ``run.dir`` is ``output_dir``:
    nnabla_nas's Runner reads ``HydraConfig`` for its output path and log names, so outside a
    Hydra app it cannot run without one. Whatever ``HydraConfig`` held before (an app's own, or
    one a finished app left behind) is put back afterwards.

    The runner's output directory is ``<output_dir>/<args['output_path']>``."""
    from hydra.conf import HydraConf
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    hydra = OmegaConf.structured(HydraConf)
    hydra.run.dir = os.path.abspath(os.fspath(output_dir))
    hydra.runtime.cwd = os.getcwd()
    instance = HydraConfig.instance()
    previous = instance.cfg
    instance.set_config(OmegaConf.create({"hydra": hydra}))
    try:
        yield
    finally:
        instance.cfg = previous

# -- nnabla_nas's fast mode (NNABLA_NAS_MIXEDOP_FAST_MODE) ---------------------------------
# With the variable set, every nnabla_nas Module keeps its original ``call`` as ``_call_create``
# and answers every later call with the output Variable of its first one, whatever the input.
# Measuring a module on fresh inputs then times the cached graph instead: nas_hw calls the
# original ``call`` while it builds what it measures.

def original_call(m):
    """The module's own ``call`` (the uncached one where nnabla_nas's fast mode caches outputs)."""
    return m.__dict__.get("_call_create") or m.call


def uncached_calls(model):
    """A context in which every module of ``model`` builds its graph anew on each call, also
    where nnabla_nas's fast mode would return a cached output (no-op elsewhere)."""
    return overriding_calls([(m, m.__dict__["_call_create"]) for _, m in model.get_modules()
                             if "_call_create" in m.__dict__])


# -- training flags -------------------------------------------------------------------------

def training_flags(model):
    """``[(module, training)]`` for every module of ``model``, to put back with
    :func:`restore_training_flags` (``Module.apply`` would give all of them the root's)."""
    return [(m, m.__dict__.get("_training", True)) for _, m in model.get_modules()]


def restore_training_flags(flags):
    """Puts back what :func:`training_flags` returned, module by module."""
    for m, flag in flags:
        m.__dict__["_training"] = flag


# -- static-graph modules (nnabla_nas.module.static: zoph, random_wired) --------------------
# A static module knows its parents and keeps the output of its last build in ``_value``;
# calling a static model rebuilds it and re-samples its ``Join`` choices. nas_hw rebuilds it
# with every Join keeping its last choice, then puts the user's built graph back.

def is_static(m):
    """True for an nnabla_nas static-graph module (parents + a cached output)."""
    return hasattr(m, "_recursive_call") and hasattr(m, "_parents")


def _output_module(m):
    seen = set()
    while getattr(m, "output", m) is not m and id(m) not in seen:  # a static Graph ends in its last module
        seen.add(id(m))
        m = m.output
    return m


def static_output(m):
    """The output Variable of a static module's last build (``None`` when never built)."""
    return _output_module(m).__dict__.get("_value")


def build_static(model):
    """Builds a static model's graph from its own input modules; returns its output Variable."""
    return model._recursive_call()


def _is_join(m):
    """A static ``Join`` (picks or mixes its parents' outputs; its parents may be registered as
    its submodules, so it need not be a leaf)."""
    return hasattr(m, "_sel_p") and hasattr(m, "_join_parameters") and hasattr(m, "_parents")


def static_choices(model):
    """The mode and last choice of every static ``Join`` (a static architecture's key)."""
    return tuple((m.mode, m.__dict__.get("_idx")) for _, m in model.get_modules() if _is_join(m))


def _join_keeping_choice(m):
    def rebuild():
        if m.__dict__.get("_value") is None:
            m.need_grad = True
            m._value = m.call(m._parents[int(m._idx)]())
        return m._value
    return rebuild


_STATIC_STATE = ("_value", "_shape", "_need_grad")


@contextlib.contextmanager
def static_rebuild(model):
    """A context in which rebuilding the static ``model`` reproduces its last architecture (each
    sampling ``Join`` reuses its last choice, and no score is written to its parameters); the
    model's last built graph and flags are put back afterwards. No-op for dynamic models."""
    if not is_static(model):
        yield
        return
    modules = [m for _, m in model.get_modules()]
    saved = [(m, {k: m.__dict__[k] for k in _STATIC_STATE if k in m.__dict__}) for m in modules]
    joins = [m for m in modules if _is_join(m) and m.mode != "linear" and m.__dict__.get("_idx") is not None]
    for m in joins:
        m.__dict__["_recursive_call"] = _join_keeping_choice(m)
    try:
        yield
    finally:
        for m in joins:
            m.__dict__.pop("_recursive_call", None)
        for m, state in saved:
            for k in _STATIC_STATE:
                if k in state:
                    m.__dict__[k] = state[k]
                else:
                    m.__dict__.pop(k, None)


def call_module(m, inputs):
    """Builds ``m``'s graph on the Variables ``inputs`` (as its model would call it)."""
    if _is_join(m) and m.mode == "linear":
        return m.call(list(inputs))  # a linear Join takes the list of its parents' outputs
    return original_call(m)(*inputs)
