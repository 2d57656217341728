"""Search checkpoints: everything a stopped search needs to carry on where it stopped.

A checkpoint directory holds ``params.npz`` (weights and alphas), the two solvers' states and
``state.json`` (epoch, history, callback states, random states), written last so that a
directory with ``state.json`` holds a complete checkpoint.
"""
import json
import logging
import os

import numpy as np

from .. import nnabla_nas_compat as nnas
from ..files import atomic_write

logger = logging.getLogger(__name__)

CHECKPOINT_STATE = "state.json"


def save_checkpoint(searcher, path):
    """Writes weights, alphas, solver states, callback states, epoch and random states.

    Args:
        path: a directory (created if missing).
    """
    os.makedirs(path, exist_ok=True)
    params = searcher.model.get_parameters(grad_only=False)
    np.savez(os.path.join(path, "params.npz"), **{k: v.d for k, v in params.items()})
    searcher.net_solver.save_states(os.path.join(path, "net_solver.h5"))
    searcher.arch_solver.save_states(os.path.join(path, "arch_solver.h5"))
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
    or a run directory holding ``checkpoint/``.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: the checkpoint is of another algorithm or another space.
    """
    path = checkpoint_dir_of(path)
    state_path = os.path.join(path, CHECKPOINT_STATE)
    if not os.path.isfile(state_path):
        raise FileNotFoundError(f"no checkpoint at {path!r} (missing {CHECKPOINT_STATE})")
    with open(state_path) as f:
        state = json.load(f)
    if state["algorithm"] != searcher.algorithm:
        raise ValueError(f"checkpoint {path!r} is of a {state['algorithm']!r} search, "
                         f"this searcher runs {searcher.algorithm!r}")
    saved = np.load(os.path.join(path, "params.npz"))
    params = searcher.model.get_parameters(grad_only=False)
    if set(saved.files) != set(params):
        missing = sorted(set(params) - set(saved.files))[:5]
        extra = sorted(set(saved.files) - set(params))[:5]
        raise ValueError(f"checkpoint {path!r} does not match this model's parameters "
                         f"(missing {missing}, unexpected {extra})")
    for key, p in params.items():
        if saved[key].shape != p.shape:
            raise ValueError(f"checkpoint {path!r}: parameter {key!r} has shape "
                             f"{saved[key].shape}, the model has {p.shape}")
        p.d = saved[key]
    searcher.net_solver.load_states(os.path.join(path, "net_solver.h5"))
    searcher.arch_solver.load_states(os.path.join(path, "arch_solver.h5"))
    searcher.epoch = state["epoch"]
    searcher.warmup_epoch = state["warmup_epoch"]
    searcher.arch_step_count = state["arch_step"]
    searcher.history = state["history"]
    searcher.callbacks.load_state_dict(state["callbacks"])
    _set_rng_state(searcher.rng, state["rng"])
    for cp, rng_state in zip(searcher.choice_points, state["mixedop_rngs"]):
        _set_rng_state(nnas.rng(cp.mixedop), rng_state)
    searcher.load_extra_state(state["extra"])
    logger.info("resumed from %s at epoch %d (warm-up %d/%d)", path, searcher.epoch,
                searcher.warmup_epoch, searcher.warmup_epochs)


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
