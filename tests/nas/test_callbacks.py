"""Callbacks (nas_hw/callbacks.py): the composite, and each callback's effect."""
import csv
import json
import math

import pytest

from nas_hw.nas.callbacks import (BudgetCheckpoint, Callback, CallbackList, CSVLogger,
                              LatencyConstraint, LatencyMonitor)

from tests.search.test_loop import tiny_searcher


class Recorder(Callback):
    """Records the hooks it sees, and counts as stateful."""

    def __init__(self, name, calls):
        self.name, self.calls, self.seen = name, calls, 0

    def on_search_start(self, logs):
        self.calls.append((self.name, "start"))

    def on_arch_step_end(self, logs):
        self.calls.append((self.name, "arch"))

    def on_reward(self, logs):
        self.calls.append((self.name, "reward"))

    def on_epoch_end(self, logs):
        self.seen += 1
        self.calls.append((self.name, "epoch"))

    def on_search_end(self, logs):
        self.calls.append((self.name, "end"))

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


def test_base_hooks_do_nothing_and_have_no_state():
    cb = Callback()
    for hook in ("on_search_start", "on_arch_step_end", "on_reward", "on_epoch_end",
                 "on_search_end"):
        logs = {"x": 1}
        assert getattr(cb, hook)(logs) is None and logs == {"x": 1}
    assert cb.state_dict() == {}


def test_callback_list_calls_in_order_and_keys_states_by_name():
    calls = []
    cbs = CallbackList({"a": Recorder("a", calls), "b": Recorder("b", calls)})
    cbs.on_search_start({})
    cbs.on_epoch_end({})
    cbs.on_reward({})
    assert calls == [("a", "start"), ("b", "start"), ("a", "epoch"), ("b", "epoch"),
                     ("a", "reward"), ("b", "reward")]
    assert cbs.state_dict() == {"a": {"seen": 1}, "b": {"seen": 1}}
    fresh = CallbackList({"a": Recorder("a", []), "b": Recorder("b", [])})
    fresh.load_state_dict({"a": {"seen": 5}, "gone": {"seen": 1}})  # 'gone' is warned about
    assert fresh.callbacks[0].seen == 5 and fresh.callbacks[1].seen == 0
    with pytest.raises(TypeError, match="must be a nas_hw.nas.callbacks.Callback"):
        CallbackList({"x": object()})


def test_searcher_calls_every_hook(tmp_path):
    calls = []
    searcher = tiny_searcher("proxyless", tmp_path, callbacks={"r": Recorder("r", calls)})
    searcher.run()
    kinds = [k for _, k in calls]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("arch") == 2 and kinds.count("epoch") == 1
    assert kinds.count("reward") == 2 * 2  # n_samples per arch step
    assert searcher.callbacks.callbacks[0].searcher is searcher


def test_latency_constraint_factor():
    c = LatencyConstraint(bound_ms=2.0, weight=0.5)
    assert c.factor(1.0) == 1.0 and c.factor(2.0) == 1.0
    assert c.factor(8.0) == pytest.approx(0.5)  # (2/8) ** 0.5
    logs = {"reward": 0.8, "latency_ms": 8.0}
    c.on_reward(logs)
    assert logs["reward"] == pytest.approx(0.4)
    off = LatencyConstraint(bound_ms=None)
    logs = {"reward": 0.8, "latency_ms": 8.0}
    off.on_reward(logs)
    assert logs["reward"] == 0.8
    for bad in (dict(bound_ms=0), dict(bound_ms=-1.0), dict(weight=-0.1), dict(bound_ms="1")):
        with pytest.raises(ValueError):
            LatencyConstraint(**bad)
    with pytest.raises(ValueError, match="latency_ms"):
        c.factor(0.0)


def test_latency_constraint_steers_the_proxyless_reward(tmp_path):
    rewards = []

    class Spy(Callback):
        def on_reward(self, logs):
            rewards.append((logs["accuracy"], logs["reward"], logs["latency_ms"]))

    bound = 1e-6  # every architecture is over it
    searcher = tiny_searcher("proxyless", tmp_path, callbacks={
        "constraint": LatencyConstraint(bound_ms=bound, weight=1.0), "spy": Spy()})
    searcher.run()
    assert rewards
    for acc, reward, latency_ms in rewards:
        assert reward == pytest.approx(acc * bound / latency_ms)


def test_latency_monitor_adds_table_and_measured_latency(tmp_path):
    monitor = LatencyMonitor(every_n_arch_steps=1, n_run=2)
    searcher = tiny_searcher("proxyless", tmp_path, callbacks={"monitor": monitor})
    searcher.run()
    assert [h["arch_step"] for h in monitor.history] == [1, 2]
    assert all(h["sampled_latency_ms"] > 0 for h in monitor.history)
    row = searcher.history[-1]
    assert row["argmax_latency_ms"] == pytest.approx(searcher.table.for_choices(row["choices"]))
    assert row["true_latency_ms"] > 0
    assert row["estimation_error"] == pytest.approx(
        (row["argmax_latency_ms"] - row["true_latency_ms"]) / row["true_latency_ms"])
    with pytest.raises(ValueError, match="every_n_arch_steps"):
        LatencyMonitor(every_n_arch_steps=0)


def test_latency_monitor_without_measurement_logs_no_true_latency(tmp_path):
    searcher = tiny_searcher("darts", tmp_path, callbacks={
        "monitor": LatencyMonitor(measure_true_latency=False)})
    searcher.run()
    row = searcher.history[-1]
    assert "true_latency_ms" not in row and "sampled_latency_ms" not in row  # 'full' samples nothing
    assert row["expected_latency_ms"] > 0


def test_budget_checkpoint_keeps_the_best_architecture_within_budget(tmp_path):
    searcher = tiny_searcher("darts", tmp_path)
    cb = BudgetCheckpoint(budget_ms=None)
    cb.set_searcher(searcher)
    path = tmp_path / "arch.json"
    cb.on_epoch_end({"epoch": 0, "valid_acc": 0.5, "choices": [0, 0], "argmax_latency_ms": 1.0})
    first = json.loads(path.read_text())
    assert first["choices"] == [0, 0] and first["valid_acc"] == 0.5
    assert first["latency_ms"] == pytest.approx(searcher.table.for_choices([0, 0]))
    assert first["param_bytes"] > 0 and first["flops"] > 0 and len(first["candidates"]) == 2
    cb.on_epoch_end({"epoch": 1, "valid_acc": 0.4, "choices": [1, 1], "argmax_latency_ms": 1.0})
    assert json.loads(path.read_text())["choices"] == [0, 0]  # worse: not kept
    cb.on_epoch_end({"epoch": 2, "valid_acc": 0.6, "choices": [1, 4], "argmax_latency_ms": 1.0})
    assert json.loads(path.read_text())["choices"] == [1, 4]

    restored = BudgetCheckpoint()
    restored.load_state_dict(json.loads(json.dumps(cb.state_dict())))
    assert restored.best_score == 0.6 and restored.best["choices"] == [1, 4]
    # resumed into a new run directory: the best so far is written there at search start
    other = tiny_searcher("darts", tmp_path / "resumed")
    restored.set_searcher(other)
    restored.on_search_start({})
    assert json.loads((tmp_path / "resumed" / "arch.json").read_text())["choices"] == [1, 4]


def test_budget_checkpoint_skips_architectures_over_budget(tmp_path):
    searcher = tiny_searcher("darts", tmp_path)
    cb = BudgetCheckpoint(budget_ms=0.5)
    cb.set_searcher(searcher)
    cb.on_epoch_end({"epoch": 0, "valid_acc": 0.9, "choices": [0, 0], "argmax_latency_ms": 0.6})
    assert not (tmp_path / "arch.json").exists()
    cb.on_search_end({})
    with pytest.raises(KeyError, match="valid_acc"):
        cb.on_epoch_end({"epoch": 0, "choices": [0, 0], "argmax_latency_ms": 0.1})
    with pytest.raises(ValueError, match="budget_ms"):
        BudgetCheckpoint(budget_ms=0)


def test_csv_logger_writes_one_row_per_epoch_and_appends_after_resume(tmp_path):
    searcher = tiny_searcher("darts", tmp_path)
    log = CSVLogger()
    log.set_searcher(searcher)
    log.on_epoch_end({"epoch": 0, "valid_acc": 0.5, "choices": [1, 2], "flag": True})
    log.on_epoch_end({"epoch": 1, "valid_acc": 0.75, "choices": [1, 3], "new_key": 3.0})
    resumed = CSVLogger()
    resumed.set_searcher(searcher)
    resumed.load_state_dict(log.state_dict())
    resumed.on_epoch_end({"epoch": 2, "valid_acc": 0.8, "choices": [0, 0]})
    rows = list(csv.DictReader(open(tmp_path / "search_log.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert list(rows[0]) == ["epoch", "valid_acc", "choices"]
    assert rows[1]["choices"] == "1 3" and math.isclose(float(rows[2]["valid_acc"]), 0.8)
    with pytest.raises(ValueError, match="plain file name"):
        CSVLogger(filename="../x.csv")
