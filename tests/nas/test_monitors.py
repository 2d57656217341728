"""TensorBoard event files of a search (nas_hw/nas/monitors.py), read back with TensorBoard's
own event reader."""
import math
import os
import sys

import numpy as np
import pytest

from nas_hw.errors import DependencyMissingError
from nas_hw.nas.callbacks import LatencyMonitor
from nas_hw.nas.monitors import TensorBoardLogger, group_labels, numbers, tag_part
from nas_hw.nas.penalty import LatencyPenalty

from tests.search.test_loop import tiny_searcher

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="reading event files back needs tensorboard (the test extra)")


def read_events(log_dir):
    """``{tag: [(step, value), ...]}`` of the scalars, and the text tags, as TensorBoard reads them."""
    acc = event_accumulator.EventAccumulator(log_dir, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    return scalars, acc.Tags()["tensors"]


def softmax(a):
    e = np.exp(a - a.max())
    return e / e.sum()


@pytest.mark.parametrize("algorithm", ["darts", "proxyless"])
def test_search_writes_losses_latencies_penalty_and_alphas(algorithm, tmp_path):
    tb = TensorBoardLogger(log_dir="tb")
    monitor = LatencyMonitor(every_n_arch_steps=1, measure_true_latency=True, n_run=2)
    searcher = tiny_searcher(algorithm, tmp_path, weight=0.5, epochs=2,
                             callbacks={"monitor": monitor, "tensorboard": tb})
    searcher.run()
    assert tb.writer is None  # closed at the search's end
    files = os.listdir(tmp_path / "tb")
    assert files and all(f.startswith("events.out.tfevents.") for f in files)
    scalars, texts = read_events(str(tmp_path / "tb"))
    table = searcher.table
    n_steps = searcher.arch_step_count
    assert n_steps == 4

    # the latency series on the architecture-step axis, one point per step
    for tag in ("latency/expected_ms", "latency/argmax_ms"):
        assert [s for s, _ in scalars[tag]] == list(range(1, n_steps + 1))
    assert scalars["latency/expected_ms"][-1][1] == pytest.approx(table.expected(unit="m"), rel=1e-5)
    assert scalars["latency/argmax_ms"][-1][1] == pytest.approx(table.argmax(unit="m"), rel=1e-5)
    # the penalty the loss saw: linear without target = weight * E[latency]
    assert scalars["penalty/term"][-1][1] == pytest.approx(0.5 * table.expected(), rel=1e-4)
    if algorithm == "darts":
        assert {"arch/arch_loss", "arch/valid_loss"} <= set(scalars)
        assert "latency/sampled_ms" not in scalars  # a 'full' mixture samples no path
    else:
        assert {"arch/reward", "arch/baseline", "arch/sampled_latency_ms", "latency/sampled_ms"} <= set(scalars)

    # softmax(alpha) of every candidate of every group: the last point is the final alphas
    labels = group_labels(table, searcher.model)
    assert len(labels) == table.n_groups
    for (group, cands), alpha in zip(labels, table.alphas):
        probs = [scalars[f"alpha/{tag_part(group)}/{tag_part(c)}"][-1][1] for c in cands]
        assert probs == pytest.approx(list(softmax(alpha.d.reshape(-1))), abs=1e-6)
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
    # the model names its groups and candidates: they are in the tags
    assert any(tag.startswith("alpha/stage0_block0/") and "ir_k3" in tag for tag in scalars)

    # the epoch axis: the searcher's numbers and what the LatencyMonitor added before
    for key in ("train_loss", "train_acc", "valid_acc", "epoch_time_s", "expected_latency_ms",
                "argmax_latency_ms", "true_latency_ms", "estimation_error"):
        series = scalars[f"epoch/{key}"]
        assert [s for s, _ in series] == [0, 1]
    assert scalars["epoch/valid_acc"][-1][1] == pytest.approx(searcher.history[-1]["valid_acc"], rel=1e-6)
    assert scalars["epoch/true_latency_ms"][-1][1] > 0
    assert "run/summary/text_summary" in texts


def test_log_mode_writes_the_loss_factor(tmp_path):
    tb = TensorBoardLogger(log_dir="tb")
    searcher = tiny_searcher("darts", tmp_path, callbacks=[tb])
    table = searcher.table
    target_us = table.expected(unit="u") * 0.8
    searcher.penalty = LatencyPenalty(table, mode="log", target=target_us, unit="u")
    searcher._arch_graph = None
    searcher.run()
    scalars, _ = read_events(str(tmp_path / "tb"))
    assert "penalty/term" not in scalars
    expected = 0.2 * (math.log(table.expected(unit="u")) / math.log(target_us)) ** 0.3
    assert scalars["penalty/factor"][-1][1] == pytest.approx(expected, rel=1e-4)


def test_no_penalty_no_penalty_series_and_every_n_steps(tmp_path):
    tb = TensorBoardLogger(log_dir=str(tmp_path / "abs"), every_n_arch_steps=2)
    searcher = tiny_searcher("darts", tmp_path, callbacks=[tb], epochs=2)
    searcher.run()
    scalars, _ = read_events(str(tmp_path / "abs"))  # an absolute log_dir is taken as it is
    assert not any(tag.startswith("penalty/") for tag in scalars)
    assert [s for s, _ in scalars["latency/expected_ms"]] == [2, 4]


def test_bad_settings_and_missing_tensorboardx_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="every_n_arch_steps"):
        TensorBoardLogger(every_n_arch_steps=0)
    with pytest.raises(ValueError, match="log_dir"):
        TensorBoardLogger(log_dir="")
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX -> ImportError
    with pytest.raises(DependencyMissingError, match="pip install tensorboardX"):
        TensorBoardLogger()


def test_numbers_keep_finite_reals_only():
    logs = {"epoch": 1, "arch_step": 3, "loss": 0.5, "n": 2, "flag": True, "name": "x",
            "choices": [1, 2], "bad": float("nan"), "np": np.float32(1.5)}
    assert numbers(logs) == {"loss": 0.5, "n": 2.0, "np": 1.5}
    assert tag_part("cells/0 edge:1") == "cells_0_edge_1"
