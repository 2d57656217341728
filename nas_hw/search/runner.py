"""nas_hw's latency penalty and callbacks in nnabla_nas's own Runner.

A user of nnabla_nas's ``DartsSearcher`` or ``ProxylessNasSearcher`` (``nnabla_nas.runner.searcher``)
keeps their SearchNet, data loaders, optimizers and hyper-parameters, and adds three lines::

    table = CandidateTable.build(model, LatencyGraphEstimator(), input_shape=(1, 3, 32, 32))
    Searcher = hardware_aware(DartsSearcher)
    Searcher(model, optimizer, regularizer, dataloader, hparams, args, table=table,
             penalty=LatencyPenalty(weight=0.1), callbacks=[LatencyMonitor(), CSVLogger()]).run()

:func:`hardware_aware` returns a subclass of the given searcher class that hooks into it at the
points nnabla_nas's Runner offers, leaving its algorithm as it is:

* **DARTS** (the architecture loss is back-propagated): the penalty is added to the valid graph's
  loss when the runner builds it (``update_graph('valid')``): ``loss + term / accum`` in the
  additive modes (the loss is accumulated over ``accum`` mini-batches, the penalty once),
  ``loss * factor`` in ``log`` mode. Its gradient reaches the alphas with the loss's.
* **ProxylessNAS** (REINFORCE writes the alphas' gradient by hand): the penalty's gradient is
  added to the alphas' gradient just before the architecture optimizer's update (the optimizer
  is wrapped; the user's own dict is not changed). Additive modes only, as in nas_hw's own loop.
* **Callbacks**: ``on_search_start`` after ``callback_on_start``, ``on_arch_step_end`` after every
  ``valid_on_batch``, ``on_epoch_end`` after ``callback_on_epoch_end`` (logs: ``epoch``,
  ``train_loss``, ``train_acc``, ``valid_loss``, ``valid_acc`` from the runner's monitor, the
  derived ``choices``, ``epoch_time_s``; ProxylessNAS adds ``reward`` and ``sampled_latency_ms``,
  the mean table latency of the paths it sampled for its rewards), ``on_search_end`` after
  ``callback_on_finish``. The runner is the ``searcher`` the callbacks see (it has the table,
  the output directory, ``derive``...).

nas_hw's :class:`~nas_hw.nas.callbacks.LatencyConstraint` scales rewards in nas_hw's own
ProxylessNAS loop; nnabla_nas's ``ProxylessNasSearcher`` computes its reward itself (its
``regularizer`` entries), so the constraint is refused here rather than silently doing nothing.
nnabla_nas's Runner needs a Hydra run configuration (its output path and log names come from
``HydraConfig``): inside nnabla_nas's own Hydra app there is one; elsewhere wrap the run in
:func:`nas_hw.nnabla_nas_compat.hydra_run_dir`.
"""
import logging
import os
import time

import numpy as np

from .. import nnabla_nas_compat as nnas
from ..nas.callbacks import Callback, CallbackList, LatencyConstraint, check_derive_fn
from .derive import describe_architecture, measure_network_latency_ms

logger = logging.getLogger(__name__)


def hardware_aware(searcher_cls):
    """A subclass of nnabla_nas's ``searcher_cls`` (``DartsSearcher`` or ``ProxylessNasSearcher``,
    or a subclass of one) taking nas_hw's penalty and callbacks: see the module docstring and
    :class:`HardwareAware` for its extra keyword arguments. ``FairNasSearcher`` trains no
    architecture parameters and is refused (search its space with ``nas-hw search
    space=nnabla_nas/fairnas``)."""
    if not isinstance(searcher_cls, type):
        raise TypeError(f"searcher_cls must be an nnabla_nas searcher class, got {searcher_cls!r}")
    return type(f"HardwareAware{searcher_cls.__name__}", (HardwareAware, searcher_cls), {})


class _PenalisedUpdate:
    """An nnabla_nas ``Optimizer`` whose ``update()`` first adds the penalty term's gradient to
    the parameters' gradient (nnabla accumulates into a parameter's ``g``)."""

    def __init__(self, optimizer, term):
        self._optimizer = optimizer
        self._term = term

    def update(self):
        self._term.forward()
        self._term.backward()
        self._optimizer.update()

    def __getattr__(self, name):
        return getattr(self._optimizer, name)


class HardwareAware:
    """The mixin :func:`hardware_aware` puts before an nnabla_nas searcher class.

    Args:
        *args: the searcher's own arguments (``model, optimizer, regularizer, dataloader, hparams,
            args``).
        table: the :class:`~nas_hw.nas.table.CandidateTable` of ``model`` (its argmax follows the
            model's derivation rule: DARTS's for nnabla_nas's DARTS SearchNet; build it with
            ``rule='argmax'`` for PNAS).
        penalty: a :class:`~nas_hw.nas.penalty.LatencyPenalty` (or ``MemoryPenalty``), or ``None``.
        callbacks: nas_hw callbacks (a list, a dict name -> callback, or a ``CallbackList``).
        derive_fn: ``choices -> fixed Module`` (e.g.
            :func:`nas_hw.search.spaces.searchnets.deriver`), needed by callbacks that build the
            derived network (``BudgetCheckpoint``, a measuring ``LatencyMonitor``).
        deploy_input_shape: (N, C, H, W) of the measured latencies (default: the table's).
        ext_name, device_id: where the derived network's latency is measured.
        **kwargs: more arguments of the searcher class.

    Raises:
        ValueError: a penalty the algorithm cannot take, a callback needing ``derive_fn``
            without one, a callback writing where nnabla_nas writes, or ``LatencyConstraint``.
        TypeError: the class is not nnabla_nas's DARTS or ProxylessNAS searcher.
    """

    def __init__(self, *args, table, penalty=None, callbacks=None, derive_fn=None, deploy_input_shape=None,
                 ext_name="cpu", device_id=0, **kwargs):
        if isinstance(callbacks, Callback) and not isinstance(callbacks, CallbackList):
            callbacks = [callbacks]
        self.callbacks = callbacks if isinstance(callbacks, CallbackList) else CallbackList(callbacks or ())
        self.table = table
        self.penalty = penalty
        self.derive_fn = derive_fn
        self.deploy_input_shape = tuple(deploy_input_shape or table.input_shape or ())
        self.ext_name, self.device_id = ext_name, device_id
        self.arch_step_count = 0
        self.history = []
        self._sampled_ms = []
        self._epoch_start = None
        check_derive_fn(self.callbacks, derive_fn)
        _check_callbacks(self.callbacks)
        self.algorithm = nnas.runner_algorithm(self)
        if self.algorithm == "fairnas":
            raise TypeError("FairNasSearcher trains no architecture parameters: nas_hw's penalty and callbacks have "
                            "nothing to act on (search FairNAS's space with nas-hw search space=nnabla_nas/fairnas)")
        if self.algorithm is None:
            raise TypeError(f"{type(self).__name__} is not nnabla_nas's DartsSearcher or ProxylessNasSearcher")
        if penalty is not None:
            if self.algorithm == "proxyless" and penalty.mode == "log":
                raise ValueError("penalty: nnabla_nas's ProxylessNAS gets the penalty's gradient added to "
                                 "REINFORCE's, so the mode must be one of ('linear', 'hinge'), got 'log'")
            penalty.bind(table)
        super().__init__(*args, **kwargs)
        if penalty is not None and self.algorithm == "proxyless":
            self.optimizer = dict(self.optimizer)  # the user's dict stays as it was
            self.optimizer["valid"] = _PenalisedUpdate(self.optimizer["valid"], penalty.penalty_of(None))

    # -- what nas_hw's callbacks read from their searcher ----------------------------------------
    @property
    def output_dir(self):
        """The runner's output directory (where nnabla_nas writes too)."""
        return nnas.runner_output_dir(self)

    @property
    def epoch(self):
        return self.cur_epoch

    @property
    def epochs(self):
        return int(self.hparams["epoch"])

    @property
    def warmup_epochs(self):
        return int(self.hparams.get("warmup", 0))

    @property
    def mixedop_mode(self):
        """The MixedOps' mode (``'full'`` for DARTS, ``'sample'`` for ProxylessNAS)."""
        return self.table.points[0].mode

    def argmax_choices(self):
        """The architecture derived now (the table's rule)."""
        return self.table.argmax_choices()

    def derive(self, choices):
        if self.derive_fn is None:
            raise ValueError("this searcher was built without derive_fn: it cannot build a fixed network")
        return self.derive_fn(list(choices))

    def measure_latency_ms(self, choices, n_run=20):
        """Measured latency (ms) of the derived network at the deployment input shape, on the
        table's measuring backend."""
        return measure_network_latency_ms(self.derive(choices), self.deploy_input_shape, self.ext_name,
                                          self.device_id, n_run=n_run, backend=self.table.backend)

    def choice_names(self, choices):
        """The chosen candidate's name in every group (nnabla_nas's names where it has them)."""
        firsts = {}
        for cp in self.table.points:
            firsts.setdefault(cp.group, cp)
        out = []
        for g, c in enumerate(choices):
            cp = firsts[g]
            names = nnas.searchnet_candidate_names(self.model, cp.mixedop) or [type(m).__name__ for m in cp.candidates]
            out.append(names[int(c)])
        return out

    def describe_architecture(self, choices):
        arch = describe_architecture(self.table, self.derive(choices), choices, self.deploy_input_shape)
        if arch.get("candidates") is None:
            arch["candidates"] = self.choice_names(choices)
        return arch

    # -- the runner's hooks ------------------------------------------------------------------------
    def update_graph(self, key="train"):
        super().update_graph(key)
        if key != "valid":
            return
        if self.algorithm == "proxyless":  # the path just sampled is the one its reward is for
            self._sampled_ms.append(self.table.sampled(unit="m"))
        if self.penalty is not None and self.algorithm == "darts":
            p = nnas.runner_placeholder(self, "valid")
            if p.get("nas_hw_penalised") is not p["loss"]:
                accum = max(int(self.accum_valid), 1)
                if self.penalty.mode == "log":
                    loss = self.penalty.apply(p["loss"])
                else:
                    loss = p["loss"] + self.penalty.penalty_of(None) * (1.0 / accum)
                p["loss"] = p["nas_hw_penalised"] = loss.apply(persistent=True)

    def callback_on_start(self):
        super().callback_on_start()
        self.callbacks.set_searcher(self)
        self.callbacks.on_search_start({"algorithm": self.algorithm, "epochs": self.epochs,
                                        "start_epoch": self.cur_epoch, "output_dir": self.output_dir})
        self._epoch_start = time.perf_counter()

    def valid_on_batch(self, *args, **kwargs):
        out = super().valid_on_batch(*args, **kwargs)
        self.arch_step_count += 1
        logs = {"epoch": self.cur_epoch, "arch_step": self.arch_step_count}
        if self.algorithm == "darts":
            logs["arch_loss"] = float(np.asarray(nnas.runner_placeholder(self, "valid")["loss"].d).reshape(-1)[0])
        else:
            logs["reward"] = nnas.runner_reward(self)
        self.callbacks.on_arch_step_end(logs)
        return out

    def callback_on_epoch_end(self):
        super().callback_on_epoch_end()
        meters = nnas.runner_meters(self)
        logs = {"epoch": self.cur_epoch}
        for split in ("train", "valid"):
            if f"loss/{split}" in meters:
                logs[f"{split}_loss"] = meters[f"loss/{split}"]
            if f"error/{split}" in meters:
                logs[f"{split}_acc"] = 1.0 - meters[f"error/{split}"]
        if self.algorithm == "proxyless":
            logs["reward"] = nnas.runner_reward(self)
            if self._sampled_ms:
                logs["sampled_latency_ms"] = float(np.mean(self._sampled_ms))
        self._sampled_ms = []
        logs["choices"] = self.argmax_choices()
        now = time.perf_counter()
        logs["epoch_time_s"] = now - (self._epoch_start or now)
        self._epoch_start = now
        self.callbacks.on_epoch_end(logs)
        self.history.append({k: v for k, v in logs.items() if isinstance(v, (int, float, str, list))})

    def callback_on_finish(self):
        super().callback_on_finish()
        self.callbacks.on_search_end({"choices": self.argmax_choices(), "history": self.history})


def _check_callbacks(callbacks):
    for name, cb in callbacks.named:
        if isinstance(cb, LatencyConstraint):
            raise ValueError(f"callbacks: {name!r} (LatencyConstraint) scales rewards in nas_hw's own ProxylessNAS "
                             "loop; nnabla_nas's searchers compute their reward themselves (use their regularizer, "
                             "or LatencyPenalty)")
        for attr in ("filename", "log_dir"):
            target = getattr(cb, attr, None)
            if isinstance(target, str) and os.path.normpath(target) in nnas.RUNNER_OUTPUTS:
                raise ValueError(f"callbacks: {name!r} ({type(cb).__name__}) would write {target!r}, which "
                                 f"nnabla_nas's searchers write themselves ({', '.join(nnas.RUNNER_OUTPUTS)}): "
                                 f"set {attr} to another name")


class SplitLoader:
    """A data loader in nnabla_nas's protocol (``next()``, ``len()``, ``transform``) over one
    split of a :class:`~nas_hw.search.datasets.Dataset`: shuffled mini-batches, endlessly.

    Args:
        split: a :class:`~nas_hw.search.datasets.Split`.
        batch_size: samples per ``next()`` (the runner's ``mini_batch_*``).
        seed: seeds the order.
    """

    def __init__(self, split, batch_size, seed=0):
        if len(split) < batch_size:
            raise ValueError(f"batch_size {batch_size} is larger than the split ({len(split)} samples)")
        self.split, self.batch_size = split, int(batch_size)
        self.transform = None
        self._rng = np.random.RandomState(seed)
        self._order, self._at = self._rng.permutation(len(split)), 0

    def __len__(self):
        return len(self.split)

    def next(self):
        if self._at + self.batch_size > len(self._order):
            self._order, self._at = self._rng.permutation(len(self.split)), 0
        idx = self._order[self._at:self._at + self.batch_size]
        self._at += self.batch_size
        return {"inputs": [self.split.x[idx]], "targets": [self.split.y[idx]]}
