"""ProxylessNAS: MixedOps in mode ``'sample'``; each architecture step samples ``n_samples``
paths, rewards each with its valid accuracy (callbacks may scale the reward:
:class:`~nas_hw.nas.callbacks.LatencyConstraint`), and follows REINFORCE with a moving-average
baseline. The differentiable penalty's gradient is then *added* to the alphas' gradient.

Order of the ProxylessNAS architecture step (it matters: a MixedOp in mode ``'sample'``
*overwrites* ``alpha.g`` with ``softmax(alpha) - onehot(sampled)`` while its graph is built):

1. for each sample: build the graph (this writes ``alpha.g``), forward, read the reward,
   copy ``alpha.g``;
2. set ``alpha.g = mean((reward - baseline) * copied_grad)``;
3. forward the penalty term and ``backward()`` it: nnabla *accumulates* into ``alpha.g``;
4. update the alphas, then the baseline.
"""
import numpy as np

from ..checks import check_fraction, check_int, check_number
from ..constants import MAX_N_SAMPLES
from .loop import Searcher, accuracy


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
        self.n_samples = check_int("n_samples", n_samples, low=1, high=MAX_N_SAMPLES)
        self.baseline_decay = check_fraction("baseline_decay", baseline_decay)
        penalty = kwargs.get("penalty", args[3] if len(args) > 3 else None)
        if penalty is not None and penalty.mode == "log":
            raise ValueError("the proxyless search adds the penalty's gradient to REINFORCE's, "
                             "so the penalty mode must be one of ('linear', 'hinge'), got 'log'")
        # set before the base class, which may load a checkpoint's baseline
        self.baseline = None
        self._penalty_term = None
        self._epoch_sampled_ms = []  # table latency of every path sampled this epoch
        super().__init__(*args, **kwargs)

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
            logs = {"reward": acc, "accuracy": acc, "latency_ms": self.table.sampled(unit="m")}
            self.callbacks.on_reward(logs)
            rewards.append(float(logs["reward"]))
            latencies.append(logs["latency_ms"])
        self._epoch_sampled_ms.extend(latencies)
        mean_reward = float(np.mean(rewards))
        if self.baseline is None:
            self.baseline = mean_reward
        for j, p in enumerate(params):
            p.g = sum((r - self.baseline) * g[j] for r, g in zip(rewards, grads)) / len(rewards)
        if self.penalty is not None:
            if self._penalty_term is None:  # the penalty is bound once the table is attached
                self._penalty_term = self.penalty.penalty_of(None)
            self._penalty_term.forward()
            self._penalty_term.backward(clear_buffer=True)  # accumulates into alpha.g
        if self.arch_weight_decay:
            self.arch_solver.weight_decay(self.arch_weight_decay)
        self.arch_solver.update()
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * mean_reward
        return {"reward": mean_reward, "baseline": self.baseline,
                "sampled_latency_ms": float(np.mean(latencies))}

    def epoch_logs(self):
        """The reward baseline and ``sampled_latency_ms``: the mean table latency of the paths
        sampled in the epoch's architecture steps (recorded as they were sampled, so the
        evaluation of the derived architecture does not change it)."""
        logs = {"baseline": self.baseline} if self.baseline is not None else {}
        if self._epoch_sampled_ms:
            logs["sampled_latency_ms"] = float(np.mean(self._epoch_sampled_ms))
            self._epoch_sampled_ms = []
        return logs

    def extra_state(self):
        """The reward baseline."""
        return {"baseline": self.baseline}

    def load_extra_state(self, state):
        """Restores the reward baseline (a finite number, or null before the first step)."""
        baseline = state["baseline"]
        if baseline is not None:
            check_number("baseline", baseline)
        self.baseline = None if baseline is None else float(baseline)

    def attach_table(self, table):
        """As :meth:`Searcher.attach_table`; the penalty term is rebuilt on the new table."""
        super().attach_table(table)
        self._penalty_term = None
