"""TensorBoard event files of a search (the :class:`TensorBoardLogger` callback).

Why TensorBoard event files rather than nnabla's ``nnabla.monitor`` text series: nnabla_nas,
the NAS framework nnabla users search with, writes TensorBoard event files from its runner
(``<output>/tensorboard``), so a DARTS / ProxylessNAS user on nnabla already reads search curves
in TensorBoard; nnabla's monitors write one text file per series, viewable only with nnabla's
own plotting helpers. The files are written with ``tensorboardX`` (a maintained writer needing
only numpy, packaging and protobuf>=3.20, all already required by nnabla 1.39) and read by
TensorBoard itself (``tensorboard --logdir outputs/search``).

Tags (``<run>/tensorboard/events.out.tfevents.*``):

* on the architecture-step axis (every ``every_n_arch_steps`` steps):
  ``arch/<key>`` each number the searcher logs for the step (``arch_loss``, ``valid_loss`` for
  DARTS; ``reward``, ``baseline``, ``sampled_latency_ms`` for ProxylessNAS),
  ``latency/expected_ms``, ``latency/argmax_ms`` (and ``latency/sampled_ms`` when the MixedOps
  sample) from the candidate table,
  ``penalty/term`` (what the penalty adds to the loss; modes ``linear`` and ``hinge``) or
  ``penalty/factor`` (what it multiplies the loss by; mode ``log``), without a penalty none,
  ``alpha/<choice group>/<index>_<candidate>``: softmax(alpha) of every candidate;
* on the epoch axis: ``epoch/<key>`` each number of the epoch logs (``train_loss``,
  ``train_acc``, ``valid_acc``, ``epoch_time_s``, and what earlier callbacks added:
  ``expected_latency_ms``, ``argmax_latency_ms``, ``true_latency_ms``, ``estimation_error``...);
* a text summary ``run/summary`` at the start (algorithm, penalty, table range).
"""
import logging
import math
import os

import nnabla as nn
import numpy as np

from ..checks import check_int
from ..errors import DependencyMissingError
from .callbacks import Callback

logger = logging.getLogger(__name__)

#: Entries of the logs that are axes, not series.
AXES = ("epoch", "arch_step")


def _summary_writer():
    try:
        from tensorboardX import SummaryWriter
    except ImportError as err:
        raise DependencyMissingError(
            f"the TensorBoard callback needs tensorboardX, which is not installed ({err}): "
            "pip install tensorboardX, or drop the callback with ~callbacks.tensorboard") from err
    return SummaryWriter


def _softmax(values):
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    e = np.exp(a - a.max())
    return e / e.sum()


def numbers(logs):
    """The finite real-number entries of ``logs`` (bools, strings, lists and axes left out)."""
    out = {}
    for key, value in logs.items():
        if key in AXES or isinstance(value, bool):
            continue
        if isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(float(value)):
            out[key] = float(value)
    return out


def tag_part(text):
    """``text`` as one part of a TensorBoard tag (characters TensorBoard refuses become ``_``)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in str(text)) or "_"


def group_labels(table, model=None):
    """``[(group name, [candidate label, ...]), ...]`` per choice group, in group order.

    nas_hw's spaces name their groups and candidates (``stage0/block1``, ``ir_k5_e3``); for other
    models the group takes the name of its first choice point and the candidates their class
    names, prefixed by their index (class names repeat within a group).
    """
    names = getattr(model, "choice_group_names", None)
    candidates = getattr(model, "candidate_names_per_group", None)
    if names is not None and candidates is not None and len(names) == table.n_groups:
        return [(n, [f"{i}_{c}" for i, c in enumerate(cands)]) for n, cands in zip(names, candidates)]
    first = {}
    for point, group in enumerate(table.groups):
        first.setdefault(group, point)
    return [(table.names[first[g]], [f"{i}_{c}" for i, c in enumerate(table.candidate_names[first[g]])])
            for g in range(table.n_groups)]


class TensorBoardLogger(Callback):
    """Writes the search's curves as TensorBoard event files in the run directory.

    See the module docstring for the tags. Put it after :class:`~nas_hw.nas.callbacks.LatencyMonitor`
    in the callback list so the epoch's measured latency is in the logs it writes.

    Args:
        log_dir: the event files' directory, relative to the searcher's output directory (or
            absolute).
        every_n_arch_steps: write the architecture-step series every this many steps (>= 1).
        flush_secs: how often the writer flushes to disk in the background (>= 1); it also
            flushes at every epoch end and closes at the search's end.

    Raises:
        DependencyMissingError: tensorboardX is not installed.
    """

    def __init__(self, log_dir="tensorboard", every_n_arch_steps=1, flush_secs=30):
        if not isinstance(log_dir, str) or not log_dir.strip():
            raise ValueError(f"log_dir must be a directory name (relative to the run directory), "
                             f"got {log_dir!r}")
        self.log_dir = log_dir
        self.every_n_arch_steps = check_int("every_n_arch_steps", every_n_arch_steps, low=1)
        self.flush_secs = check_int("flush_secs", flush_secs, low=1)
        self._writer_class = _summary_writer()  # refused at build time, before measuring
        self.writer = None
        self._labels = None
        self._penalty_value = None

    @property
    def path(self):
        """The directory the event files are written to."""
        return os.path.join(self.searcher.output_dir, self.log_dir)

    # -- what is written ------------------------------------------------------------------
    def _scalars(self, prefix, values, step):
        for key, value in values.items():
            self.writer.add_scalar(f"{prefix}/{tag_part(key)}", value, step)

    def _penalty(self):
        """``('term' | 'factor', value)`` of the searcher's penalty now, or ``None`` without one.

        The penalty's own graph is forwarded (so the value is the one the loss sees): the term
        alone in the additive modes, the loss factor (a loss of 1) in ``log`` mode."""
        penalty = getattr(self.searcher, "penalty", None)
        if penalty is None or getattr(penalty, "table", None) is None:
            return None
        if self._penalty_value is None:
            if penalty.mode == "log":
                one = nn.Variable.from_numpy_array(np.ones((), dtype=np.float32))
                self._penalty_value = ("factor", penalty.penalty_of(one))
            else:
                self._penalty_value = ("term", penalty.penalty_of(None))
        kind, variable = self._penalty_value
        variable.forward(clear_no_need_grad=True)
        return kind, float(variable.d)

    def _arch_values(self):
        table = self.searcher.table
        values = {"expected_ms": table.expected(unit="m"), "argmax_ms": table.argmax(unit="m")}
        if getattr(self.searcher, "mixedop_mode", None) == "sample":
            values["sampled_ms"] = table.sampled(unit="m")
        return values

    def _alphas(self, step):
        table = self.searcher.table
        if self._labels is None:
            self._labels = group_labels(table, getattr(self.searcher, "model", None))
        for (group, labels), alpha in zip(self._labels, table.alphas):
            probs = _softmax(alpha.d)
            for label, p in zip(labels, probs):
                self.writer.add_scalar(f"alpha/{tag_part(group)}/{tag_part(label)}", float(p), step)

    def _summary_text(self):
        s = self.searcher
        penalty = getattr(s, "penalty", None)
        if penalty is None:
            what = "none (accuracy only)"
        else:
            what = (f"{type(penalty).__name__} mode={penalty.mode} weight={penalty.weight} "
                    f"target={penalty.target} unit={penalty.unit}")
        table = s.table
        return "\n\n".join([
            f"algorithm: {s.algorithm}, epochs: {s.epochs} (+{s.warmup_epochs} warm-up)",
            f"latency penalty: {what}",
            f"candidate table: {table.n_groups} choice groups, subnetworks from "
            f"{table.min(unit='m'):.4f} ms to {table.max(unit='m'):.4f} ms "
            f"(device {table.fingerprint})",
        ])

    # -- hooks ------------------------------------------------------------------------------
    def on_search_start(self, logs):
        """Opens the writer (event files are added to an existing directory after a resume)."""
        os.makedirs(self.path, exist_ok=True)
        self.writer = self._writer_class(self.path, flush_secs=self.flush_secs)
        self.writer.add_text("run/summary", self._summary_text(), self.searcher.epoch)
        logger.info("TensorBoard event files: %s (tensorboard --logdir %s)", self.path,
                    os.path.dirname(os.path.abspath(self.searcher.output_dir)))

    def on_arch_step_end(self, logs):
        """Writes the step's numbers, the table latencies, the penalty and softmax(alpha)."""
        step = int(logs["arch_step"])
        if step % self.every_n_arch_steps:
            return
        self._scalars("arch", numbers(logs), step)
        self._scalars("latency", self._arch_values(), step)
        penalty = self._penalty()
        if penalty is not None:
            self.writer.add_scalar(f"penalty/{penalty[0]}", penalty[1], step)
        self._alphas(step)

    def on_epoch_end(self, logs):
        """Writes the epoch's numbers and flushes."""
        self._scalars("epoch", numbers(logs), int(logs["epoch"]))
        self.writer.flush()

    def on_search_end(self, logs):
        """Closes the writer."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
