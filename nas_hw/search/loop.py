"""The search loop: weight steps on the train split, architecture steps on the valid split.

The two algorithms, :class:`~nas_hw.search.darts.DartsSearcher` and
:class:`~nas_hw.search.proxyless.ProxylessSearcher`, implement :meth:`Searcher.arch_step`.
"""
import contextlib
import logging
import os
import time

import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S
import numpy as np
from tqdm.auto import tqdm

from .. import nnabla_nas_compat as nnas
from ..checks import check_batch_size, check_int, check_number, check_one_of, check_seed
from ..constants import MAX_EPOCHS, MAX_LR, MAX_WEIGHT_DECAY, OPTIMIZERS
from ..nas.callbacks import Callback, CallbackList, check_derive_fn
from ..nas.choices import (arch_parameters, derivation_rule, find_choice_points, fixed_choices,
                           net_parameters, per_point, set_mode)
from .checkpoint import check_resume, load_checkpoint, save_checkpoint
from .datasets import iterate_batches
from .derive import describe_architecture, measure_network_latency_ms

logger = logging.getLogger(__name__)


def make_solver(name, lr, momentum=0.9, field="optimizer"):
    """An nnabla solver by name.

    Args:
        name: ``'momentum'``, ``'sgd'`` or ``'adam'``.
        lr: learning rate (Adam's ``alpha``).
        momentum: momentum of ``'momentum'``.
        field: the argument name a bad ``name`` is reported under.

    Returns:
        nnabla.solvers.Solver
    """
    check_one_of(field, name, OPTIMIZERS)
    if name == "momentum":
        return S.Momentum(lr, momentum)
    if name == "sgd":
        return S.Sgd(lr)
    return S.Adam(alpha=lr, beta1=0.5, beta2=0.999)


def accuracy(logits, y):
    """Share of rows of ``logits`` whose argmax is the label ``y`` ((N, 1) ints)."""
    return float(np.mean(np.argmax(logits, axis=1) == y.reshape(-1)))


class Searcher:
    """Base of the search loops; subclasses implement :meth:`arch_step`.

    Args:
        model: the supernet (an nnabla_nas ``Module`` with MixedOps).
        dataset: a :class:`~nas_hw.search.datasets.Dataset` (train split for weights, valid split
            for the architecture).
        table: the :class:`~nas_hw.nas.table.CandidateTable` of ``model``, or ``None`` to give it
            later with :meth:`attach_table` (before :meth:`run`).
        penalty: a :class:`~nas_hw.nas.penalty.LatencyPenalty`, or ``None``; it is bound to the
            table when the table is attached.
        callbacks: a :class:`~nas_hw.nas.callbacks.CallbackList`, a list or dict of callbacks.
        derive_fn: ``choices -> Module``: builds the fixed network of an architecture; ``None``:
            the model's own ``derive`` when it has one. Callbacks that need it (``needs_derive``:
            :class:`~nas_hw.nas.callbacks.BudgetCheckpoint`, a measuring
            :class:`~nas_hw.nas.callbacks.LatencyMonitor`) are refused without one, here.
        output_dir: where callbacks write and checkpoints go.
        epochs: search epochs (after warm-up).
        warmup_epochs: epochs of weight steps only, first.
        batch_size: mini-batch size of both splits.
        max_batches: cap on the batches of one epoch (``None``: the whole train split).
        net_optimizer, net_lr, net_momentum, net_weight_decay: the weights' solver.
        arch_optimizer, arch_lr, arch_weight_decay: the alphas' solver.
        deploy_input_shape: (N, C, H, W) at which latency is measured.
        ext_name, device_id: where latency is measured.
        seed: seeds batch order and path sampling.
        progress: show tqdm bars.
        checkpoint: save a checkpoint in ``output_dir/checkpoint`` after every epoch.
        resume: a run directory (or its ``checkpoint/``) of an earlier search to carry on from,
            loaded at once.
    """

    algorithm = None
    mixedop_mode = None
    #: ``None`` for a search; a baseline (:mod:`nas_hw.search.baselines`) says what it chose by
    baseline = None

    def __init__(self, model, dataset, table=None, penalty=None, callbacks=None, derive_fn=None,
                 output_dir=".", epochs=1, warmup_epochs=0, batch_size=64, max_batches=None,
                 net_optimizer="momentum", net_lr=0.05, net_momentum=0.9, net_weight_decay=1e-4,
                 arch_optimizer="adam", arch_lr=3e-3, arch_weight_decay=1e-3,
                 deploy_input_shape=None, ext_name="cpu", device_id=0, seed=0, progress=False,
                 checkpoint=True, resume=None):
        check_int("epochs", epochs, low=0, high=MAX_EPOCHS)
        check_int("warmup_epochs", warmup_epochs, low=0, high=MAX_EPOCHS)
        check_batch_size(batch_size)
        check_int("max_batches", max_batches, low=1, allow_none=True)
        check_one_of("net_optimizer", net_optimizer, OPTIMIZERS)
        check_one_of("arch_optimizer", arch_optimizer, OPTIMIZERS)
        for name, value in (("net_lr", net_lr), ("arch_lr", arch_lr)):
            check_number(name, value, low=0, low_open=True, high=MAX_LR)
        check_number("net_momentum", net_momentum, low=0, high=1, high_open=True)
        for name, value in (("net_weight_decay", net_weight_decay), ("arch_weight_decay", arch_weight_decay)):
            check_number(name, value, low=0, high=MAX_WEIGHT_DECAY)
        check_seed(seed)
        if len(dataset.valid) == 0:
            raise ValueError("the search needs a non-empty valid split (valid_fraction > 0)")
        check_resume(resume)
        self.model = model
        self.dataset = dataset
        self.table = None
        self.penalty = penalty
        if callbacks is None:
            callbacks = CallbackList()
        elif isinstance(callbacks, Callback) and not isinstance(callbacks, CallbackList):
            callbacks = CallbackList([callbacks])
        elif not isinstance(callbacks, CallbackList):
            callbacks = CallbackList(callbacks)
        self.callbacks = callbacks
        self.derive_fn = derive_fn if derive_fn is not None else getattr(model, "derive", None)
        check_derive_fn(self.callbacks, self.derive_fn)
        self.output_dir = os.fspath(output_dir)  # created by run(): a refused search writes nothing
        self.epochs = epochs
        self.warmup_epochs = warmup_epochs
        self.batch_size = batch_size
        self.max_batches = max_batches
        self.net_weight_decay = float(net_weight_decay)
        self.arch_weight_decay = float(arch_weight_decay)
        self.deploy_input_shape = tuple(int(s) for s in (
            deploy_input_shape or (1,) + tuple(dataset.input_shape)))
        self.ext_name = ext_name
        self.device_id = device_id
        self.seed = seed
        self.progress = progress
        self.checkpoint = checkpoint

        self.choice_points = find_choice_points(model, require_shapes=False)
        if not self.choice_points:
            raise ValueError("the model has no choice points (MixedOp): nothing to search")
        self.rule = derivation_rule(model, self.choice_points)
        set_mode(model, self.mixedop_mode)
        for i, cp in enumerate(self.choice_points):
            nnas.set_rng(cp.mixedop, np.random.RandomState(seed * 1000 + i))
        self._arch_params = arch_parameters(model)
        # running statistics (need_grad=False) are not the solver's business
        self._net_params = type(self._arch_params)(
            (k, p) for k, p in net_parameters(model).items() if p.need_grad)
        self.net_solver = make_solver(net_optimizer, net_lr, net_momentum)
        self.net_solver.set_parameters(self._net_params)
        self.arch_solver = make_solver(arch_optimizer, arch_lr)
        self.arch_solver.set_parameters(self._arch_params)

        self.rng = np.random.RandomState(seed)
        self.epoch = 0
        self.warmup_epoch = 0
        self.arch_step_count = 0
        self.history = []
        self._graphs = {}
        self._valid_iter = None
        if table is not None:
            self.attach_table(table)
        if resume:
            self.load_checkpoint(resume)

    def attach_table(self, table):
        """Gives the searcher the candidate table of its model (and binds the penalty to it)."""
        self.table = table
        if self.penalty is not None:
            self.penalty.bind(table)

    # nnabla_nas vocabulary -------------------------------------------------------------
    def get_net_parameters(self, grad_only=False):
        """The trainable network weights (every parameter but the alphas and the batch-norm
        running statistics), an ``OrderedDict``."""
        return self._net_params

    def get_arch_parameters(self, grad_only=False):
        """The architecture parameters (one alpha per choice group), an ``OrderedDict``."""
        return self._arch_params

    # graphs ----------------------------------------------------------------------------
    def _build(self, batch_shape, training):
        """Builds ``(x, y, logits, loss)`` on a fresh input of ``batch_shape``."""
        self.model.apply(training=training)
        x = nn.Variable(batch_shape)
        y = nn.Variable((batch_shape[0], 1))
        logits = self.model(x)
        loss = F.mean(F.softmax_cross_entropy(logits, y))
        return x, y, logits, loss

    def _graph(self, key, batch_shape, training):
        """A graph to feed; rebuilt every call when the MixedOps sample while building."""
        if self.model_samples_on_build(training):
            return self._build(batch_shape, training)
        cache_key = (key, batch_shape, training)
        if cache_key not in self._graphs:
            self._graphs[cache_key] = self._build(batch_shape, training)
        graph = self._graphs[cache_key]
        self.model.apply(training=training)
        return graph

    def model_samples_on_build(self, training):
        """Whether building the graph picks the path (MixedOp mode ``'sample'``/``'max'``)."""
        return self.mixedop_mode != "full"

    def _run_batch(self, key, x_np, y_np, training):
        x, y, logits, loss = self._graph(key, x_np.shape, training)
        x.d, y.d = x_np, y_np
        return x, y, logits, loss

    # steps -----------------------------------------------------------------------------
    def train_on_batch(self, x_np, y_np):
        """One weight step on a train batch; returns ``(loss, accuracy)``."""
        _, _, logits, loss = self._run_batch("train", x_np, y_np, training=True)
        self.net_solver.zero_grad()
        loss.forward(clear_no_need_grad=True)
        acc = accuracy(logits.d, y_np)
        loss.backward(clear_buffer=True)
        if self.net_weight_decay:
            self.net_solver.weight_decay(self.net_weight_decay)
        self.net_solver.update()
        return float(loss.d), acc

    def arch_step(self, x_np, y_np):
        """One architecture step on a valid batch; returns a dict of scalars to log."""
        raise NotImplementedError(f"{type(self).__name__} must implement arch_step")

    def _next_valid_batch(self):
        if self._valid_iter is not None:
            batch = next(self._valid_iter, None)
            if batch is not None:
                return batch
        valid = self.dataset.valid
        self._valid_iter = iter(iterate_batches(valid.x, valid.y, min(self.batch_size, len(valid)),
                                                rng=self.rng, shuffle=True, drop_last=True))
        return next(self._valid_iter)

    def _train_batches(self):
        train = self.dataset.train
        batches = iterate_batches(train.x, train.y, self.batch_size, rng=self.rng,
                                  shuffle=True, drop_last=True)
        n = len(train) // self.batch_size
        if n == 0:
            raise ValueError(f"batch_size {self.batch_size} is larger than the train split "
                             f"({len(train)} samples)")
        if self.max_batches is not None:
            n = min(n, self.max_batches)
        return (b for _, b in zip(range(n), batches)), n

    def evaluate(self, split="valid", batch_size=256):
        """Accuracy of the supernet on a split: the ``'full'`` mixture for DARTS, the derived
        architecture (:meth:`argmax_choices`) for ProxylessNAS.

        The derived paths run through :func:`~nas_hw.nas.choices.fixed_choices`, which restores
        every MixedOp's state afterwards: the path the last architecture step sampled (what
        ``table.sampled()`` reads) is still the active one after an evaluation.

        Batch normalisation uses the statistics of each batch: the running statistics of a
        supernet, whose weights and mixture move fast, are too stale to score it."""
        data = getattr(self.dataset, split)
        derived = contextlib.nullcontext()
        if self.mixedop_mode != "full":
            derived = fixed_choices(self.choice_points, per_point(self.choice_points, self.argmax_choices()))
        correct = 0
        with derived:
            for x_np, y_np in iterate_batches(data.x, data.y, batch_size, shuffle=False):
                _, _, logits, _ = self._run_batch(f"eval-{split}", x_np, y_np, training=True)
                logits.forward(clear_buffer=True)
                correct += accuracy(logits.d, y_np) * len(x_np)
        return correct / len(data)

    # architecture ----------------------------------------------------------------------
    def argmax_choices(self):
        """The architecture derived now, one candidate index per alpha group: the argmax of its
        alpha, or the space's own rule (DARTS: :func:`~nas_hw.nas.choices.derivation_rule`); the
        table's rule once a table is attached (a table built with ``rule=...`` decides)."""
        if self.table is not None:
            return self.table.argmax_choices()
        return self.rule(self.choice_points)

    def derive(self, choices):
        """The fixed network of ``choices`` (freshly initialised weights)."""
        if self.derive_fn is None:
            raise ValueError("this searcher was built without derive_fn: it cannot build a "
                             "fixed network from choices")
        return self.derive_fn(list(choices))

    def measure_latency_ms(self, choices, n_run=20):
        """Measured true latency (ms) of the fixed network of ``choices`` at the deployment
        input shape, with the whole-graph :class:`~nas_hw.estimators.network.Profiler`."""
        net = self.derive(choices)
        return measure_network_latency_ms(net, self.deploy_input_shape, self.ext_name,
                                          self.device_id, n_run=n_run,
                                          backend="nnabla" if self.table is None else self.table.backend)

    def describe_architecture(self, choices):
        """A JSON-ready description of ``choices``: candidate names, latency_ms (table),
        param_bytes and flops of the derived network (see :func:`describe_architecture`)."""
        return describe_architecture(self.table, self.derive(choices), choices,
                                     self.deploy_input_shape)

    # loop ------------------------------------------------------------------------------
    def _bar(self, iterable, total, desc):
        return tqdm(iterable, total=total, desc=desc, disable=not self.progress, leave=False)

    def warmup(self):
        """Weight steps only, for the remaining warm-up epochs."""
        while self.warmup_epoch < self.warmup_epochs:
            batches, n = self._train_batches()
            losses = []
            for x_np, y_np in self._bar(batches, n, f"warm-up {self.warmup_epoch}"):
                losses.append(self.train_on_batch(x_np, y_np)[0])
            logger.info("warm-up epoch %d: train loss %.4f", self.warmup_epoch, np.mean(losses))
            self.warmup_epoch += 1
            self._save_checkpoint()

    def run(self):
        """Warm-up, then the search epochs. Returns the final argmax choices."""
        if self.table is None:
            raise RuntimeError("the searcher has no candidate table: call attach_table(table) first")
        os.makedirs(self.output_dir, exist_ok=True)
        self.callbacks.set_searcher(self)
        self.callbacks.on_search_start({"algorithm": self.algorithm, "epochs": self.epochs,
                                        "start_epoch": self.epoch,
                                        "output_dir": self.output_dir})
        self.warmup()
        while self.epoch < self.epochs:
            start = time.perf_counter()
            batches, n = self._train_batches()
            losses, accs = [], []
            for x_np, y_np in self._bar(batches, n, f"search {self.epoch}"):
                loss, acc = self.train_on_batch(x_np, y_np)
                losses.append(loss)
                accs.append(acc)
                x_v, y_v = self._next_valid_batch()
                step_logs = self.arch_step(x_v, y_v)
                self.arch_step_count += 1
                self.callbacks.on_arch_step_end({"epoch": self.epoch,
                                                 "arch_step": self.arch_step_count, **step_logs})
            logs = {"epoch": self.epoch, "train_loss": float(np.mean(losses)),
                    "train_acc": float(np.mean(accs)), "valid_acc": self.evaluate("valid"),
                    "choices": self.argmax_choices(), "epoch_time_s": time.perf_counter() - start}
            logs.update(self.epoch_logs())
            self.callbacks.on_epoch_end(logs)
            logger.info("epoch %d: train loss %.4f acc %.4f, valid acc %.4f, choices %s",
                        self.epoch, logs["train_loss"], logs["train_acc"], logs["valid_acc"],
                        logs["choices"])
            self.history.append({k: v for k, v in logs.items()
                                 if isinstance(v, (int, float, str, list))})
            self.epoch += 1
            self._save_checkpoint()
        choices = self.argmax_choices()
        self.callbacks.on_search_end({"choices": choices, "history": self.history})
        return choices

    def epoch_logs(self):
        """Algorithm-specific entries of the epoch logs."""
        return {}

    # checkpoints -----------------------------------------------------------------------
    @property
    def checkpoint_dir(self):
        """Where :meth:`save_checkpoint` writes by default."""
        return os.path.join(self.output_dir, "checkpoint")

    def _save_checkpoint(self):
        if self.checkpoint:
            self.save_checkpoint(self.checkpoint_dir)

    def extra_state(self):
        """Algorithm-specific state to checkpoint (JSON-serialisable)."""
        return {}

    def load_extra_state(self, state):
        """Restores :meth:`extra_state`."""

    def save_checkpoint(self, path):
        """Writes weights, alphas, solver states, callback states, epoch and random states to the
        directory ``path`` (see :func:`nas_hw.search.checkpoint.save_checkpoint`)."""
        save_checkpoint(self, path)

    def load_checkpoint(self, path):
        """Restores a checkpoint (see :func:`nas_hw.search.checkpoint.load_checkpoint`)."""
        load_checkpoint(self, path)
        self._graphs.clear()
        self._valid_iter = None
