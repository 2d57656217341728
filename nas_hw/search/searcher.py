"""The search loop: weight steps on the train split, architecture steps on the valid split.

Two algorithms, in nnabla_nas's vocabulary:

- :class:`DartsSearcher` (first-order DARTS): MixedOps in mode ``'full'``; the architecture
  loss is the valid loss plus the latency penalty, minimised by gradient descent on the
  alphas.
- :class:`ProxylessSearcher` (ProxylessNAS): MixedOps in mode ``'sample'``; each
  architecture step samples ``n_samples`` paths, rewards each with its valid accuracy
  (callbacks may scale the reward: :class:`~nas_hw.callbacks.LatencyConstraint`), and
  follows REINFORCE with a moving-average baseline. The differentiable penalty's gradient
  is then *added* to the alphas' gradient.

Order of the ProxylessNAS architecture step (it matters: a MixedOp in mode ``'sample'``
*overwrites* ``alpha.g`` with ``softmax(alpha) - onehot(sampled)`` while its graph is built):

1. for each sample: build the graph (this writes ``alpha.g``), forward, read the reward,
   copy ``alpha.g``;
2. set ``alpha.g = mean((reward - baseline) * copied_grad)``;
3. forward the penalty term and ``backward()`` it: nnabla *accumulates* into ``alpha.g``;
4. update the alphas, then the baseline.
"""
import json
import logging
import os
import time

import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S
import numpy as np
from tqdm.auto import tqdm

from ..callbacks import Callback, CallbackList
from ..datasets import iterate_batches
from ..estimators.network import Profiler

logger = logging.getLogger(__name__)

ALGORITHMS = ("darts", "proxyless")
OPTIMIZERS = ("momentum", "sgd", "adam")
CHECKPOINT_STATE = "state.json"


def make_solver(name, lr, momentum=0.9):
    """An nnabla solver by name.

    Args:
        name: ``'momentum'``, ``'sgd'`` or ``'adam'``.
        lr: learning rate (Adam's ``alpha``).
        momentum: momentum of ``'momentum'``.

    Returns:
        nnabla.solvers.Solver
    """
    if name == "momentum":
        return S.Momentum(lr, momentum)
    if name == "sgd":
        return S.Sgd(lr)
    if name == "adam":
        return S.Adam(alpha=lr, beta1=0.5, beta2=0.999)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def accuracy(logits, y):
    """Share of rows of ``logits`` whose argmax is the label ``y`` ((N, 1) ints)."""
    return float(np.mean(np.argmax(logits, axis=1) == y.reshape(-1)))


def _set_mode(model, mode):
    from ..space import set_mode
    set_mode(model, mode)


class Searcher:
    """Base of the search loops; subclasses implement :meth:`arch_step`.

    Args:
        model: the supernet (an nnabla_nas ``Module`` with MixedOps).
        dataset: a :class:`~nas_hw.datasets.Dataset` (train split for weights, valid split
            for the architecture).
        table: the :class:`~nas_hw.table.CandidateTable` of ``model`` (latencies in ms).
        penalty: a :class:`~nas_hw.penalty.LatencyPenalty` on ``table``, or ``None``.
        callbacks: a :class:`~nas_hw.callbacks.CallbackList`, a list or dict of callbacks.
        derive_fn: ``choices -> Module``: builds the fixed network of an architecture.
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
    """

    algorithm = None
    mixedop_mode = None

    def __init__(self, model, dataset, table, penalty=None, callbacks=None, derive_fn=None,
                 output_dir=".", epochs=1, warmup_epochs=0, batch_size=64, max_batches=None,
                 net_optimizer="momentum", net_lr=0.05, net_momentum=0.9, net_weight_decay=1e-4,
                 arch_optimizer="adam", arch_lr=3e-3, arch_weight_decay=1e-3,
                 deploy_input_shape=None, ext_name="cpu", device_id=0, seed=0, progress=False,
                 checkpoint=True):
        from ..space import arch_parameters, find_choice_points, net_parameters

        for name, value in (("epochs", epochs), ("warmup_epochs", warmup_epochs)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if max_batches is not None and (not isinstance(max_batches, int) or max_batches < 1):
            raise ValueError(f"max_batches must be None or a positive integer, got {max_batches!r}")
        if len(dataset.valid) == 0:
            raise ValueError("the search needs a non-empty valid split (valid_fraction > 0)")
        self.model = model
        self.dataset = dataset
        self.table = table
        self.penalty = penalty
        if callbacks is None:
            callbacks = CallbackList()
        elif isinstance(callbacks, Callback) and not isinstance(callbacks, CallbackList):
            callbacks = CallbackList([callbacks])
        elif not isinstance(callbacks, CallbackList):
            callbacks = CallbackList(callbacks)
        self.callbacks = callbacks
        self.derive_fn = derive_fn
        self.output_dir = os.fspath(output_dir)
        os.makedirs(self.output_dir, exist_ok=True)
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

        self.choice_points = find_choice_points(model)
        if not self.choice_points:
            raise ValueError("the model has no choice points (MixedOp): nothing to search")
        _set_mode(model, self.mixedop_mode)
        for i, cp in enumerate(self.choice_points):
            cp.mixedop._rng = np.random.RandomState(seed * 1000 + i)
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
        """Accuracy of the supernet on a split: the ``'full'`` mixture for DARTS, the argmax
        paths for ProxylessNAS.

        Batch normalisation uses the statistics of each batch: the running statistics of a
        supernet, whose weights and mixture move fast, are too stale to score it."""
        data = getattr(self.dataset, split)
        if self.mixedop_mode != "full":
            _set_mode(self.model, "max")
        try:
            correct = 0
            for x_np, y_np in iterate_batches(data.x, data.y, batch_size, shuffle=False):
                _, _, logits, _ = self._run_batch(f"eval-{split}", x_np, y_np, training=True)
                logits.forward(clear_buffer=True)
                correct += accuracy(logits.d, y_np) * len(x_np)
        finally:
            if self.mixedop_mode != "full":
                _set_mode(self.model, self.mixedop_mode)
        return correct / len(data)

    # architecture ----------------------------------------------------------------------
    def argmax_choices(self):
        """One candidate index per alpha group: the argmax of its alpha."""
        from ..space import argmax_choices
        return [int(c) for c in argmax_choices(self.model)]

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
                                          self.device_id, n_run=n_run)

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
        """Writes weights, alphas, solver states, callback states, epoch and random states.

        Args:
            path: a directory (created if missing).
        """
        os.makedirs(path, exist_ok=True)
        params = self.model.get_parameters(grad_only=False)
        np.savez(os.path.join(path, "params.npz"), **{k: v.d for k, v in params.items()})
        self.net_solver.save_states(os.path.join(path, "net_solver.h5"))
        self.arch_solver.save_states(os.path.join(path, "arch_solver.h5"))
        state = {
            "algorithm": self.algorithm,
            "epoch": self.epoch,
            "warmup_epoch": self.warmup_epoch,
            "arch_step": self.arch_step_count,
            "history": self.history,
            "callbacks": self.callbacks.state_dict(),
            "rng": _rng_state(self.rng),
            "mixedop_rngs": [_rng_state(cp.mixedop._rng) for cp in self.choice_points],
            "extra": self.extra_state(),
        }
        tmp = os.path.join(path, CHECKPOINT_STATE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, os.path.join(path, CHECKPOINT_STATE))  # state.json last: a complete checkpoint

    def load_checkpoint(self, path):
        """Restores what :meth:`save_checkpoint` wrote; ``path`` is the checkpoint directory
        or a run directory holding ``checkpoint/``.

        Raises:
            FileNotFoundError: no checkpoint there.
            ValueError: the checkpoint is of another algorithm or another space.
        """
        if os.path.isdir(os.path.join(path, "checkpoint")):
            path = os.path.join(path, "checkpoint")
        state_path = os.path.join(path, CHECKPOINT_STATE)
        if not os.path.isfile(state_path):
            raise FileNotFoundError(f"no checkpoint at {path!r} (missing {CHECKPOINT_STATE})")
        with open(state_path) as f:
            state = json.load(f)
        if state["algorithm"] != self.algorithm:
            raise ValueError(f"checkpoint {path!r} is of a {state['algorithm']!r} search, "
                             f"this searcher runs {self.algorithm!r}")
        saved = np.load(os.path.join(path, "params.npz"))
        params = self.model.get_parameters(grad_only=False)
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
        self.net_solver.load_states(os.path.join(path, "net_solver.h5"))
        self.arch_solver.load_states(os.path.join(path, "arch_solver.h5"))
        self.epoch = state["epoch"]
        self.warmup_epoch = state["warmup_epoch"]
        self.arch_step_count = state["arch_step"]
        self.history = state["history"]
        self.callbacks.load_state_dict(state["callbacks"])
        _set_rng_state(self.rng, state["rng"])
        for cp, rng_state in zip(self.choice_points, state["mixedop_rngs"]):
            _set_rng_state(cp.mixedop._rng, rng_state)
        self.load_extra_state(state["extra"])
        self._graphs.clear()
        self._valid_iter = None
        logger.info("resumed from %s at epoch %d (warm-up %d/%d)", path, self.epoch,
                    self.warmup_epoch, self.warmup_epochs)


class DartsSearcher(Searcher):
    """First-order DARTS: arch loss = valid loss + latency penalty, gradient descent."""

    algorithm = "darts"
    mixedop_mode = "full"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._arch_graph = None

    def arch_step(self, x_np, y_np):
        """One gradient step of the alphas on a valid batch."""
        if self._arch_graph is None or self._arch_graph[0].shape != x_np.shape:
            x, y, logits, loss = self._build(x_np.shape, training=True)
            total = self.penalty.apply(loss) if self.penalty is not None else loss
            self._arch_graph = (x, y, loss, total)
        x, y, loss, total = self._arch_graph
        self.model.apply(training=True)
        x.d, y.d = x_np, y_np
        self.arch_solver.zero_grad()
        total.forward(clear_no_need_grad=True)
        total.backward(clear_buffer=True)
        if self.arch_weight_decay:
            self.arch_solver.weight_decay(self.arch_weight_decay)
        self.arch_solver.update()
        return {"arch_loss": float(total.d), "valid_loss": float(loss.d)}

    def load_extra_state(self, state):
        """Drops the cached architecture graph."""
        self._arch_graph = None


class ProxylessSearcher(Searcher):
    """ProxylessNAS: REINFORCE on sampled paths plus the penalty's gradient.

    Args:
        n_samples: paths sampled per architecture step.
        baseline_decay: the baseline is ``decay * baseline + (1 - decay) * mean(rewards)``
            (it starts at the first step's mean reward).
        *args, **kwargs: as :class:`Searcher`.
    """

    algorithm = "proxyless"
    mixedop_mode = "sample"

    def __init__(self, *args, n_samples=4, baseline_decay=0.9, **kwargs):
        if not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        if not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}")
        super().__init__(*args, **kwargs)
        if self.penalty is not None and self.penalty.mode == "log":
            raise ValueError("the proxyless search adds the penalty's gradient to REINFORCE's, "
                             "so the penalty mode must be one of ('linear', 'hinge'), got 'log'")
        self.n_samples = n_samples
        self.baseline_decay = float(baseline_decay)
        self.baseline = None
        self._penalty_term = None
        if self.penalty is not None:
            self._penalty_term = self.penalty.penalty_of(None)

    def arch_step(self, x_np, y_np):
        """Samples ``n_samples`` paths, REINFORCE update with the penalty gradient added."""
        params = list(self._arch_params.values())
        rewards, grads, latencies = [], [], []
        for _ in range(self.n_samples):
            _, _, logits, _ = self._run_batch("arch", x_np, y_np, training=True)
            # building the graph sampled the path and wrote alpha.g = softmax - onehot
            grads.append([p.g.copy() for p in params])
            logits.forward(clear_buffer=True)
            acc = accuracy(logits.d, y_np)
            logs = {"reward": acc, "accuracy": acc, "latency_ms": float(self.table.sampled())}
            self.callbacks.on_reward(logs)
            rewards.append(float(logs["reward"]))
            latencies.append(logs["latency_ms"])
        mean_reward = float(np.mean(rewards))
        if self.baseline is None:
            self.baseline = mean_reward
        for j, p in enumerate(params):
            p.g = sum((r - self.baseline) * g[j] for r, g in zip(rewards, grads)) / len(rewards)
        if self._penalty_term is not None:
            self._penalty_term.forward()
            self._penalty_term.backward(clear_buffer=True)  # accumulates into alpha.g
        if self.arch_weight_decay:
            self.arch_solver.weight_decay(self.arch_weight_decay)
        self.arch_solver.update()
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * mean_reward
        return {"reward": mean_reward, "baseline": self.baseline,
                "sampled_latency_ms": float(np.mean(latencies))}

    def epoch_logs(self):
        """The reward baseline."""
        return {"baseline": self.baseline} if self.baseline is not None else {}

    def extra_state(self):
        """The reward baseline."""
        return {"baseline": self.baseline}

    def load_extra_state(self, state):
        """Restores the reward baseline."""
        self.baseline = state["baseline"]


SEARCHERS = {"darts": DartsSearcher, "proxyless": ProxylessSearcher}


def make_searcher(algorithm, *args, **kwargs):
    """The searcher of ``algorithm`` (``'darts'`` or ``'proxyless'``)."""
    if algorithm not in SEARCHERS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if algorithm == "darts":
        kwargs.pop("n_samples", None)
        kwargs.pop("baseline_decay", None)
    return SEARCHERS[algorithm](*args, **kwargs)


def measure_network_latency_ms(net, input_shape, ext_name="cpu", device_id=0, n_run=20,
                               n_warmup=3):
    """Measured latency (ms) of a fixed network at ``input_shape``, in inference mode.

    Args:
        net: an nnabla_nas ``Module`` without choices.
        input_shape: (N, C, H, W).
        ext_name, device_id: where to run.
        n_run, n_warmup: profiler settings.

    Returns:
        float: mean forward time in ms.
    """
    net.apply(training=False)
    out = net(nn.Variable(tuple(input_shape)))
    profiler = Profiler(out, device_id=device_id, ext_name=ext_name, n_run=n_run,
                        n_warmup=n_warmup, per_function=False)
    return float(profiler.run()["forward_all"])


def describe_architecture(table, net, choices, input_shape):
    """A JSON-ready description of an architecture.

    Args:
        table: the :class:`~nas_hw.table.CandidateTable` (estimated latency).
        net: the derived fixed network of ``choices`` (not built yet).
        choices: one candidate index per choice group.
        input_shape: the deployment input shape (FLOPs are counted there).

    Returns:
        dict: ``choices``, ``candidates`` (names, when the space names them),
        ``latency_ms`` (table estimate), ``param_bytes``, ``flops`` and ``macs`` (``None``
        with ``flops_unknown`` listing the functions without a formula, if any).
    """
    from ..estimators.memory import count_flops, parameter_bytes

    names = net.choice_names(choices) if hasattr(net, "choice_names") else None
    net.apply(training=False)
    out = net(nn.Variable(tuple(input_shape)))
    flops = count_flops(out, on_unknown="list")
    return {
        "choices": [int(c) for c in choices],
        "candidates": names,
        "latency_ms": float(table.for_choices(list(choices))),
        "param_bytes": int(parameter_bytes(net)),
        "flops": int(flops.flops) if flops.complete else None,
        "macs": int(flops.macs) if flops.complete else None,
        "flops_unknown": sorted(set(flops.unknown)),
        "input_shape": [int(s) for s in input_shape],
    }


def _rng_state(rng):
    name, keys, pos, has_gauss, cached = rng.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_rng_state(rng, state):
    name, keys, pos, has_gauss, cached = state
    rng.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
