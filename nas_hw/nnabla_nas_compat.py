"""The one door to nnabla_nas: every read or write of a MixedOp's state goes through here.

nas_hw reaches nnabla_nas models by duck typing: a MixedOp is anything with candidates
(``_ops``), an architecture parameter (``_alpha``) and a mode (``_mode``), so models built
from nnabla_nas's modules work without importing nnabla_nas. Public API is used where
nnabla_nas has one (``active_index``); the private attributes it lacks an API for are read
and written here alone.
"""
import contextlib


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
