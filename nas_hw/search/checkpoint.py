"""Search checkpoints: everything a stopped search needs to carry on where it stopped.

A checkpoint directory holds ``params.npz`` (weights and alphas), the two solvers' states and
``state.json`` (epoch, history, callback states, random states), written last so that a
directory with ``state.json`` holds a complete checkpoint.

A checkpoint given to ``resume`` is read as untrusted input: :func:`read_checkpoint` checks every
file before anything is restored (regular files of bounded size; ``state.json`` field by field;
every parameter's ``.npy`` header against the model's shape before its data is read, and its
values finite; every solver state's name, shape and values), so a truncated, tampered or foreign
checkpoint ends in one :class:`~nas_hw.errors.CheckpointError` line naming the file and the
field, before the search measures or trains anything.
"""
import json
import logging
import math
import os
import zipfile

import numpy as np

from .. import nnabla_nas_compat as nnas
from ..constants import CHECKPOINT_MAX_STATE_BYTES, MAX_EPOCHS
from ..errors import CheckpointError
from ..files import atomic_write

logger = logging.getLogger(__name__)

CHECKPOINT_STATE = "state.json"
PARAMS_FILE = "params.npz"
SOLVER_FILES = {"net_solver": "net_solver.h5", "arch_solver": "arch_solver.h5"}
STATE_KEYS = ("algorithm", "epoch", "warmup_epoch", "arch_step", "history", "callbacks", "rng",
              "mixedop_rngs", "extra")
#: Bytes of an ``.npy`` header and of the metadata of an HDF5 dataset, allowed beyond the data.
_HEADER_BYTES = 2**16
_MT_KEYS = 624


def save_checkpoint(searcher, path):
    """Writes weights, alphas, solver states, callback states, epoch and random states.

    Args:
        path: a directory (created if missing).
    """
    os.makedirs(path, exist_ok=True)
    params = searcher.model.get_parameters(grad_only=False)
    np.savez(os.path.join(path, PARAMS_FILE), **{k: v.d for k, v in params.items()})
    searcher.net_solver.save_states(os.path.join(path, SOLVER_FILES["net_solver"]))
    searcher.arch_solver.save_states(os.path.join(path, SOLVER_FILES["arch_solver"]))
    state = {
        "algorithm": searcher.algorithm,
        "epoch": searcher.epoch,
        "warmup_epoch": searcher.warmup_epoch,
        "arch_step": searcher.arch_step_count,
        "history": searcher.history,
        "callbacks": searcher.callbacks.state_dict(),
        "rng": _rng_state(searcher.rng),
        "mixedop_rngs": [_rng_state(nnas.rng(cp.mixedop)) for cp in searcher.choice_points],
        "extra": searcher.extra_state(),
    }
    with atomic_write(os.path.join(path, CHECKPOINT_STATE)) as f:  # state.json last: a complete checkpoint
        json.dump(state, f)


def load_checkpoint(searcher, path):
    """Restores what :meth:`save_checkpoint` wrote; ``path`` is the checkpoint directory
    or a run directory holding ``checkpoint/``. Everything is checked before anything is
    restored (:func:`read_checkpoint`).

    Raises:
        FileNotFoundError: no checkpoint there.
        CheckpointError: an unreadable or tampered file, or a checkpoint of another algorithm
            or another model (a ``ValueError``).
    """
    state, params = read_checkpoint(searcher, path)
    directory = checkpoint_dir_of(path)
    for key, p in searcher.model.get_parameters(grad_only=False).items():
        p.d = params[key]
    for attr, name in SOLVER_FILES.items():
        try:
            getattr(searcher, attr).load_states(os.path.join(directory, name))
        except Exception as err:  # nnabla's own reader: anything it raises is one line here
            raise _refused(path, name, f"cannot be loaded by nnabla: {type(err).__name__}: {err}") from None
    searcher.epoch = state["epoch"]
    searcher.warmup_epoch = state["warmup_epoch"]
    searcher.arch_step_count = state["arch_step"]
    searcher.history = state["history"]
    _set_rng_state(searcher.rng, state["rng"])
    for cp, rng_state in zip(searcher.choice_points, state["mixedop_rngs"]):
        _set_rng_state(nnas.rng(cp.mixedop), rng_state)
    for field, restore in (("callbacks", searcher.callbacks.load_state_dict), ("extra", searcher.load_extra_state)):
        try:
            restore(state[field])
        except (ValueError, TypeError, KeyError) as err:
            raise _refused(path, CHECKPOINT_STATE, f"field {field!r}: {err}") from None
    logger.info("resumed from %s at epoch %d (warm-up %d/%d)", directory, searcher.epoch,
                searcher.warmup_epoch, searcher.warmup_epochs)


def read_checkpoint(searcher, path):
    """``(state, params)`` of the checkpoint at ``path`` for ``searcher``, every file checked;
    nothing is restored.

    Raises:
        FileNotFoundError: no ``state.json`` there.
        CheckpointError: the first fault found, naming the file and the field.
    """
    check_resume(path)
    directory = checkpoint_dir_of(path)
    model_params = searcher.model.get_parameters(grad_only=False)
    files = {name: os.path.join(directory, name) for name in (CHECKPOINT_STATE, PARAMS_FILE, *SOLVER_FILES.values())}
    for name, file in files.items():
        if not os.path.isfile(file):
            raise _refused(path, name, "is missing or not a regular file")
    state = _read_state(path, files[CHECKPOINT_STATE], searcher)
    params = _read_params(path, files[PARAMS_FILE], model_params)
    for attr, name in SOLVER_FILES.items():
        _check_solver_states(path, files[name], getattr(searcher, attr).get_parameters())
    return state, params


def _refused(path, name, what):
    return CheckpointError(f"resume={os.fspath(path)!r}: {name} {what}")


def _read_state(path, file, searcher):
    with open(file, "rb") as fh:
        data = fh.read(CHECKPOINT_MAX_STATE_BYTES + 1)
    if len(data) > CHECKPOINT_MAX_STATE_BYTES:
        raise _refused(path, CHECKPOINT_STATE, f"is larger than {CHECKPOINT_MAX_STATE_BYTES} bytes")
    try:
        state = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
        raise _refused(path, CHECKPOINT_STATE, f"is not valid JSON: {_short(err)}") from None

    def bad(field, what, value):
        return _refused(path, CHECKPOINT_STATE, f"field {field!r} must be {what}, got {_short(value)}")

    if not isinstance(state, dict):
        raise bad("(top level)", "an object", state)
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise _refused(path, CHECKPOINT_STATE, f"lacks the fields {missing}")
    if state["algorithm"] != searcher.algorithm:
        raise _refused(path, CHECKPOINT_STATE, f"is of a {state['algorithm']!r:.80} search, this "
                                               f"searcher runs {searcher.algorithm!r}")
    for field, high in (("epoch", MAX_EPOCHS), ("warmup_epoch", MAX_EPOCHS), ("arch_step", 2**62)):
        if not _is_int(state[field]) or not 0 <= state[field] <= high:
            raise bad(field, f"an integer in [0, {high}]", state[field])
    history = state["history"]
    if not isinstance(history, list) or len(history) > MAX_EPOCHS or \
            not all(isinstance(h, dict) and all(isinstance(k, str) for k in h) for h in history):
        raise bad("history", f"a list of at most {MAX_EPOCHS} objects", history)
    for field in ("callbacks", "extra"):
        if not isinstance(state[field], dict) or (field == "callbacks" and not all(
                isinstance(v, dict) for v in state[field].values())):
            raise bad(field, "an object" + (" of objects" if field == "callbacks" else ""), state[field])
    _check_rng(path, "rng", state["rng"])
    rngs = state["mixedop_rngs"]
    if not isinstance(rngs, list) or len(rngs) != len(searcher.choice_points):
        raise bad("mixedop_rngs", f"a list of {len(searcher.choice_points)} random states (one per choice "
                                  "point of this model)", rngs)
    for i, rng in enumerate(rngs):
        _check_rng(path, f"mixedop_rngs[{i}]", rng)
    return state


def _check_rng(path, field, value):
    ok = isinstance(value, list) and len(value) == 5 and value[0] == "MT19937" \
        and isinstance(value[1], list) and len(value[1]) == _MT_KEYS \
        and all(_is_int(k) and 0 <= k < 2**32 for k in value[1]) \
        and _is_int(value[2]) and 0 <= value[2] <= _MT_KEYS and value[3] in (0, 1) and not isinstance(value[3], bool) \
        and isinstance(value[4], (int, float)) and not isinstance(value[4], bool) and math.isfinite(value[4])
    if not ok:
        raise _refused(path, CHECKPOINT_STATE, f"field {field!r} must be a random state ['MT19937', "
                                               f"{_MT_KEYS} keys in [0, 2**32), position, 0 or 1, a finite "
                                               f"number], got {_short(value)}")


def _read_params(path, file, model_params):
    """The arrays of ``params.npz``, each ``.npy`` header checked against the model before its
    data is read (an ``.npz`` is a zip: no member is decompressed past its expected size)."""
    expected = {f"{key}.npy": key for key in model_params}
    try:
        with zipfile.ZipFile(file) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            if len(infos) != len(names) or names != set(expected):
                missing = sorted(set(expected) - names)[:5]
                extra = sorted(names - set(expected))[:5]
                raise _refused(path, PARAMS_FILE, f"does not match this model's parameters (missing {missing}, "
                                                  f"unexpected {extra}, {len(infos) - len(names)} duplicated)")
            return {expected[i.filename]: _read_npy(path, zf, i, model_params[expected[i.filename]].shape)
                    for i in infos}
    except CheckpointError:
        raise
    except Exception as err:  # BadZipFile, zlib.error, OSError, EOFError...
        raise _refused(path, PARAMS_FILE, f"cannot be read: {type(err).__name__}: {_short(err)}") from None


def _read_npy(path, zf, info, shape):
    name = f"{PARAMS_FILE}[{info.filename}]"
    shape = tuple(shape)
    limit = 8 * math.prod(shape) + _HEADER_BYTES
    if info.file_size > limit:
        raise _refused(path, name, f"declares {info.file_size} bytes, more than a {shape} array can need")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise _refused(path, name, f"is an .npy file of format version {version}, expected 1.0 or 2.0")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        stored, fortran, dtype = read_header(f)
        if tuple(stored) != shape or dtype.kind != "f" or dtype.itemsize > 8:
            raise _refused(path, name, f"holds a {dtype} array of shape {tuple(stored)}; the model's parameter "
                                       f"is a float array of shape {shape}")
        n = math.prod(shape) * dtype.itemsize
        data = f.read(n)
    if len(data) != n:
        raise _refused(path, name, f"is truncated ({len(data)} of {n} bytes)")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    if not np.isfinite(array).all():
        raise _refused(path, name, "holds NaN or infinite values")
    return array.astype(np.float32)


def _check_solver_states(path, file, solver_params):
    """Every dataset of a solver's state file names a parameter of the solver, has its shape
    (``t``: a scalar count) and finite values; every parameter has its states."""
    import h5py

    name = os.path.basename(file)
    shapes = {k: tuple(p.shape) for k, p in solver_params.items()}
    budget = 8 * (sum(math.prod(s) for s in shapes.values()) * 4 + _HEADER_BYTES * (len(shapes) + 1))
    if os.path.getsize(file) > budget:
        raise _refused(path, name, f"is {os.path.getsize(file)} bytes, more than this model's solver states need")
    seen = set()
    try:
        with h5py.File(file, "r") as h5:
            datasets = []
            h5.visititems(lambda key, obj: datasets.append(key) if isinstance(obj, h5py.Dataset) else None)
            for key in datasets:
                param, _, state = key.rpartition("/")
                ds = h5[key]
                if param not in shapes:
                    raise _refused(path, name, f"holds the state {key!r} of a parameter this model's solver lacks")
                want = () if state == "t" else shapes[param]
                if ds.shape != want or ds.dtype.kind not in ("f", "i", "u") or ds.external or ds.is_virtual:
                    raise _refused(path, name, f"state {key!r} is a {ds.dtype} dataset of shape {ds.shape}, "
                                               f"expected {want}")
                if not np.isfinite(np.asarray(ds[()], dtype=np.float64)).all():
                    raise _refused(path, name, f"state {key!r} holds NaN or infinite values")
                seen.add(param)
    except CheckpointError:
        raise
    except Exception as err:  # OSError (not HDF5), KeyError, RecursionError...
        raise _refused(path, name, f"cannot be read: {type(err).__name__}: {_short(err)}") from None
    missing = sorted(set(shapes) - seen)
    if missing:
        raise _refused(path, name, f"lacks the states of {len(missing)} parameter(s), e.g. {missing[:3]}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value):
    text = " ".join(str(value).split())
    return text if len(text) <= 120 else text[:100] + f"... ({len(text)} characters)"


def _rng_state(rng):
    name, keys, pos, has_gauss, cached = rng.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_rng_state(rng, state):
    name, keys, pos, has_gauss, cached = state
    rng.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def checkpoint_dir_of(path):
    """The checkpoint directory of ``path``: ``path/checkpoint`` when a run directory holds one."""
    path = os.fspath(path)
    return os.path.join(path, "checkpoint") if os.path.isdir(os.path.join(path, "checkpoint")) else path


def check_resume(path):
    """Raises ``FileNotFoundError`` naming ``resume`` unless ``path`` (``None``: nothing to check)
    holds a checkpoint: the checkpoint directory, or a run directory holding ``checkpoint/``."""
    if not path:
        return
    directory = checkpoint_dir_of(path)
    if not os.path.isfile(os.path.join(directory, CHECKPOINT_STATE)):
        raise FileNotFoundError(f"resume={os.fspath(path)!r} holds no checkpoint (no {CHECKPOINT_STATE} in "
                                f"{directory!r}): give a run directory of an earlier search or its checkpoint/")
