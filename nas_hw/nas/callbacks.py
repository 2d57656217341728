"""Search-loop callbacks: small hooks the :class:`~nas_hw.search.Searcher` calls.

Every hook receives one mutable ``logs`` dict (Keras style); a callback reads what the
searcher put there and may add its own entries (``LatencyMonitor`` adds
``true_latency_ms``...), which later callbacks in the list see. Callbacks that must survive a
resume expose ``state_dict()`` / ``load_state_dict()`` (Lightning style).

The searcher hands itself to each callback once, with :meth:`Callback.set_searcher`, before
``on_search_start``; a callback reaches the candidate table, the output directory and the
latency measurement through it.
"""
import csv
import json
import logging
import os

from ..checks import check_filename, check_int, check_number, check_positive
from ..files import atomic_write

logger = logging.getLogger(__name__)


class Callback:
    """Base class: every hook does nothing. Override the ones you need."""

    searcher = None

    def set_searcher(self, searcher):
        """Gives the callback the searcher it observes (called once, before the search)."""
        self.searcher = searcher

    def on_search_start(self, logs):
        """Called once before the first epoch (also after a resume)."""

    def on_arch_step_end(self, logs):
        """Called after every architecture-parameter update."""

    def on_reward(self, logs):
        """Called with each sampled architecture's ``reward`` (ProxylessNAS); may rescale it."""

    def on_epoch_end(self, logs):
        """Called after every search epoch, with the epoch's metrics."""

    def on_search_end(self, logs):
        """Called once after the last epoch, with the derived architecture."""

    def state_dict(self):
        """What the callback needs to carry on after a resume (a JSON-serialisable dict)."""
        return {}

    def load_state_dict(self, state):
        """Restores what :meth:`state_dict` returned."""


class CallbackList(Callback):
    """Calls each of its callbacks in order.

    Args:
        callbacks: an iterable of :class:`Callback`, or a dict name -> :class:`Callback`
            (the names key the checkpointed states).
    """

    def __init__(self, callbacks=()):
        if isinstance(callbacks, dict):
            items = list(callbacks.items())
        else:
            items = [(f"{type(c).__name__}_{i}", c) for i, c in enumerate(callbacks)]
        for name, cb in items:
            if not isinstance(cb, Callback):
                raise TypeError(f"callback {name!r} must be a nas_hw.nas.callbacks.Callback, "
                                f"got {type(cb).__name__}")
        self.named = items

    @property
    def callbacks(self):
        """The callbacks, in call order."""
        return [cb for _, cb in self.named]

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.named)

    def set_searcher(self, searcher):
        """Hands the searcher to every callback."""
        super().set_searcher(searcher)
        for cb in self.callbacks:
            cb.set_searcher(searcher)

    def on_search_start(self, logs):
        """Calls every callback's ``on_search_start``."""
        for cb in self.callbacks:
            cb.on_search_start(logs)

    def on_arch_step_end(self, logs):
        """Calls every callback's ``on_arch_step_end``."""
        for cb in self.callbacks:
            cb.on_arch_step_end(logs)

    def on_reward(self, logs):
        """Calls every callback's ``on_reward``."""
        for cb in self.callbacks:
            cb.on_reward(logs)

    def on_epoch_end(self, logs):
        """Calls every callback's ``on_epoch_end``."""
        for cb in self.callbacks:
            cb.on_epoch_end(logs)

    def on_search_end(self, logs):
        """Calls every callback's ``on_search_end``."""
        for cb in self.callbacks:
            cb.on_search_end(logs)

    def state_dict(self):
        """The states of the stateful callbacks, keyed by callback name."""
        return {name: cb.state_dict() for name, cb in self.named if cb.state_dict()}

    def load_state_dict(self, state):
        """Restores each callback's state; warns about saved states no callback takes."""
        names = {name for name, _ in self.named}
        unknown = sorted(set(state) - names)
        if unknown:
            logger.warning("checkpoint holds states of callbacks %s that this run does not have "
                           "(it has %s); they are dropped", unknown, sorted(names))
        for name, cb in self.named:
            if name in state:
                cb.load_state_dict(state[name])


class LatencyMonitor(Callback):
    """Logs the latency of the architecture being searched.

    Every ``every_n_arch_steps`` architecture steps it logs, from the candidate table, the
    latency of the expected (softmax-weighted), the argmax and, when the MixedOps sample
    (ProxylessNAS), the sampled architecture. At each epoch end it adds
    ``expected_latency_ms``, ``argmax_latency_ms`` (and ``sampled_latency_ms``) to the logs and, with ``measure_true_latency``, measures the
    argmax network as a whole with the :class:`~nas_hw.estimators.network.Profiler` at the
    deployment input shape: ``true_latency_ms`` and ``estimation_error``
    (``(estimated - true) / true``).

    Args:
        every_n_arch_steps: how often to log the table's latencies (architecture steps).
        measure_true_latency: also profile the argmax network once per epoch.
        n_run: timed runs of the profiler.
    """

    def __init__(self, every_n_arch_steps=20, measure_true_latency=True, n_run=20):
        self.every_n_arch_steps = check_int("every_n_arch_steps", every_n_arch_steps, low=1)
        self.measure_true_latency = bool(measure_true_latency)
        self.measures_on_device = self.measure_true_latency
        self.n_run = check_int("n_run", n_run, low=1)
        self.history = []

    def _table_latencies(self):
        table = self.searcher.table
        values = {"expected_latency_ms": table.expected(unit="m"),
                  "argmax_latency_ms": table.argmax(unit="m")}
        if self.searcher.mixedop_mode == "sample":  # a 'full' mixture samples no path
            values["sampled_latency_ms"] = table.sampled(unit="m")
        return values

    def on_arch_step_end(self, logs):
        """Logs the table latencies every ``every_n_arch_steps`` steps."""
        step = logs["arch_step"]
        if step % self.every_n_arch_steps:
            return
        values = self._table_latencies()
        self.history.append({"arch_step": step, **values})
        logger.info("arch step %d: latency %s", step,
                    ", ".join(f"{k[:-len('_latency_ms')]} {v:.4f} ms" for k, v in values.items()))

    def on_epoch_end(self, logs):
        """Adds the table latencies and the measured true latency of the argmax network."""
        logs.update(self._table_latencies())
        if not self.measure_true_latency:
            return
        true_ms = self.searcher.measure_latency_ms(logs["choices"], n_run=self.n_run)
        estimated_ms = logs["argmax_latency_ms"]
        logs["true_latency_ms"] = true_ms
        logs["estimation_error"] = (estimated_ms - true_ms) / true_ms
        logger.info("epoch %d: argmax network estimated %.4f ms, measured %.4f ms (error %+.1f%%)",
                    logs["epoch"], estimated_ms, true_ms, 100 * logs["estimation_error"])


class LatencyConstraint(Callback):
    """Scales the ProxylessNAS reward of a sampled architecture by its latency.

    ``reward *= min(1, bound_ms / latency_ms) ** weight`` (nnabla_nas's ``bound`` and
    ``weight``): architectures within the bound keep their reward, slower ones lose some.
    With ``bound_ms=None`` the constraint is off and the reward is left as it is (said once
    in the log at search start). It only acts on the reward hook, so it has no effect on a
    DARTS search (whose latency term is the differentiable penalty).

    Args:
        bound_ms: latency bound in ms, or ``None`` for no bound.
        weight: exponent of the factor, >= 0.
    """

    def __init__(self, bound_ms=None, weight=0.5):
        self.bound_ms = check_positive("bound_ms", bound_ms, allow_none=True)
        self.weight = check_number("weight", weight, low=0)

    def factor(self, latency_ms):
        """The reward factor for an architecture of ``latency_ms``."""
        check_positive("latency_ms", latency_ms)
        if self.bound_ms is None:
            return 1.0
        return min(1.0, self.bound_ms / latency_ms) ** self.weight

    def on_search_start(self, logs):
        """Says whether the constraint is active."""
        if self.bound_ms is None:
            logger.info("LatencyConstraint: no bound_ms given, rewards are not scaled")
        else:
            logger.info("LatencyConstraint: reward *= min(1, %.4f ms / latency) ** %g",
                        self.bound_ms, self.weight)

    def on_reward(self, logs):
        """Multiplies ``logs['reward']`` by :meth:`factor` of ``logs['latency_ms']``."""
        logs["reward"] = logs["reward"] * self.factor(logs["latency_ms"])


class BudgetCheckpoint(Callback):
    """Keeps the best architecture (by ``monitor``) whose estimated latency fits the budget.

    At each epoch end, if the argmax architecture's estimated latency
    (``logs['argmax_latency_ms']``) is within ``budget_ms`` and its ``monitor`` value beats
    the best so far, it writes ``filename`` in the run directory: the choices, the candidate
    names, ``latency_ms``, ``param_bytes`` and ``flops`` when known.

    Args:
        budget_ms: latency budget in ms, or ``None`` for no budget.
        monitor: the logs entry to maximise (``valid_acc``).
        filename: the JSON file written in the searcher's output directory.
    """

    def __init__(self, budget_ms=None, monitor="valid_acc", filename="arch.json"):
        self.budget_ms = check_positive("budget_ms", budget_ms, allow_none=True)
        if not monitor or not isinstance(monitor, str):
            raise ValueError(f"monitor must be the name of a logged metric, got {monitor!r}")
        self.monitor = monitor
        self.filename = check_filename("filename", filename)
        self.best_score = None
        self.best = None

    @property
    def path(self):
        """Where the architecture is written."""
        return os.path.join(self.searcher.output_dir, self.filename)

    def _write(self):
        with atomic_write(self.path) as f:
            json.dump(self.best, f, indent=2)

    def on_search_start(self, logs):
        """After a resume into a new directory, writes the best architecture found so far."""
        if self.best is not None and not os.path.exists(self.path):
            self._write()

    def on_epoch_end(self, logs):
        """Writes the architecture if it fits the budget and is the best so far."""
        if self.monitor not in logs:
            raise KeyError(f"BudgetCheckpoint monitors {self.monitor!r}, which is not in the logs "
                           f"(logged: {sorted(logs)})")
        latency_ms = logs["argmax_latency_ms"] if "argmax_latency_ms" in logs \
            else self.searcher.table.argmax(unit="m")
        if self.budget_ms is not None and latency_ms > self.budget_ms:
            logger.info("epoch %d: argmax architecture %.4f ms is over the budget %.4f ms",
                        logs["epoch"], latency_ms, self.budget_ms)
            return
        score = float(logs[self.monitor])
        if self.best_score is not None and score <= self.best_score:
            return
        arch = self.searcher.describe_architecture(logs["choices"])
        arch.update({"epoch": logs["epoch"], self.monitor: score, "budget_ms": self.budget_ms,
                     "selected_by": f"the epoch-end argmax architecture with the best {self.monitor} "
                                    f"so far whose estimated latency fits budget_ms={self.budget_ms}"})
        self.best_score, self.best = score, arch
        self._write()
        logger.info("epoch %d: %s %.4f, %.4f ms: wrote %s", logs["epoch"], self.monitor, score,
                    arch["latency_ms"], self.path)

    def on_search_end(self, logs):
        """Warns when no architecture fitted the budget (no file is written then)."""
        if self.best is None:
            logger.warning("BudgetCheckpoint: no searched architecture fitted the budget of "
                           "%s ms; %s was not written", self.budget_ms, self.filename)

    def state_dict(self):
        """The best score and architecture so far."""
        return {"best_score": self.best_score, "best": self.best}

    def load_state_dict(self, state):
        """Restores the best score and architecture."""
        self.best_score = state["best_score"]
        self.best = state["best"]


class CSVLogger(Callback):
    """Writes one row per epoch (the scalar entries of the logs) to a CSV file in the run
    directory. The columns are those of the first row; after a resume rows are appended.

    Args:
        filename: the CSV file name in the searcher's output directory.
    """

    def __init__(self, filename="search_log.csv"):
        self.filename = check_filename("filename", filename)
        self.fieldnames = None

    @property
    def path(self):
        """Where the rows are written."""
        return os.path.join(self.searcher.output_dir, self.filename)

    def on_epoch_end(self, logs):
        """Appends the epoch's row."""
        row = {k: v for k, v in logs.items()
               if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        if "choices" in logs:
            row["choices"] = " ".join(str(c) for c in logs["choices"])
        new_file = not os.path.exists(self.path)
        if self.fieldnames is None:
            if new_file:
                self.fieldnames = list(row)
            else:
                with open(self.path, newline="") as f:
                    self.fieldnames = next(csv.reader(f))
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fieldnames, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)

    def state_dict(self):
        """The column names, so a resumed run writes the same columns."""
        return {"fieldnames": self.fieldnames} if self.fieldnames else {}

    def load_state_dict(self, state):
        """Restores the column names."""
        self.fieldnames = state.get("fieldnames")
