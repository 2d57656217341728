"""The search loop (nas_hw/search/loop.py, darts.py, proxyless.py, checkpoint.py, derive.py,
retrain.py) on tiny spaces."""
import csv
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nas_hw.search.datasets import Split, load_dataset
from nas_hw.estimators.graph import LatencyGraphEstimator
from nas_hw.nas.penalty import LatencyPenalty
from nas_hw.search import SEARCHERS, DartsSearcher, ProxylessSearcher
from nas_hw.search.retrain import train_from_scratch
from nas_hw.search.spaces import MobileNetSpace
from nas_hw.nas.table import CandidateTable

TINY_SPACE = dict(in_channels=1, n_classes=10, stem_channels=4, stage_channels=(6,),
                  stage_blocks=(2,), stage_strides=(1,), kernels=(3, 5), expansions=(1, 3),
                  zero=True)


def tiny_dataset(n_train=96, n_valid=64, n_test=64):
    """Digits, cut down so an epoch is a couple of batches."""
    ds = load_dataset("digits")
    return dataclasses.replace(
        ds, train=Split(ds.train.x[:n_train], ds.train.y[:n_train]),
        valid=Split(ds.valid.x[:n_valid], ds.valid.y[:n_valid]),
        test=Split(ds.test.x[:n_test], ds.test.y[:n_test]))


def tiny_setup(mode="full", weight=0.0, seed=0):
    """A tiny MobileNet space, its candidate table and (with ``weight``) a penalty."""
    model = MobileNetSpace(mode="full", seed=seed, **TINY_SPACE)
    estimator = LatencyGraphEstimator(n_run=2, n_warmup=1)
    table = CandidateTable.build(model, estimator, input_shape=(1, 1, 8, 8), progress=False)
    penalty = LatencyPenalty(table, weight=weight) if weight else None
    return model, table, penalty


def tiny_searcher(algorithm, tmp_path, weight=0.0, callbacks=None, seed=0, **kwargs):
    model, table, penalty = tiny_setup(weight=weight, seed=seed)
    settings = dict(epochs=1, warmup_epochs=0, batch_size=32, max_batches=2, seed=seed, arch_lr=0.05)
    if algorithm == "proxyless":
        settings["n_samples"] = 2
    settings.update(kwargs)
    return SEARCHERS[algorithm](model, tiny_dataset(), table, penalty=penalty, callbacks=callbacks,
                                derive_fn=model.derive, output_dir=str(tmp_path), **settings)


def alphas(searcher):
    return [p.d.copy() for p in searcher.get_arch_parameters().values()]


@pytest.mark.parametrize("algorithm,cls", [("darts", DartsSearcher),
                                           ("proxyless", ProxylessSearcher)])
def test_one_epoch_search_updates_weights_and_alphas(algorithm, cls, tmp_path):
    searcher = tiny_searcher(algorithm, tmp_path)
    assert isinstance(searcher, cls)
    net_before = [p.d.copy() for p in searcher.get_net_parameters().values()]
    choices = searcher.run()
    assert len(choices) == 2 and all(isinstance(c, int) for c in choices)
    assert choices[0] in range(4) and choices[1] in range(5)  # 2 kernels x 2 expansions (+zero)
    assert len(searcher.history) == 1 and 0 <= searcher.history[0]["valid_acc"] <= 1
    assert any(np.abs(a).max() > 0 for a in alphas(searcher)), "alphas never moved"
    net_after = [p.d for p in searcher.get_net_parameters().values()]
    assert any(not np.allclose(a, b) for a, b in zip(net_before, net_after))
    assert searcher.arch_step_count == 2
    assert os.path.isfile(tmp_path / "checkpoint" / "state.json")


def test_solver_holds_no_alpha_and_no_running_statistics(tmp_path):
    searcher = tiny_searcher("darts", tmp_path)
    net = list(searcher.get_net_parameters().values())
    arch = list(searcher.get_arch_parameters().values())
    assert len(arch) == 2
    assert all(p.need_grad for p in net)
    assert not any(p is a for p in net for a in arch)


@pytest.mark.parametrize("algorithm", ["darts", "proxyless"])
def test_latency_penalty_lowers_the_expected_latency(algorithm, tmp_path):
    """With a large weight the penalty dominates the architecture gradient: the expected
    latency under softmax(alpha) must drop."""
    searcher = tiny_searcher(algorithm, tmp_path, weight=50.0, max_batches=3, checkpoint=False)
    before = searcher.table.expected()
    searcher.run()
    assert searcher.table.expected() < before


def test_proxyless_adds_the_penalty_gradient_to_reinforce(tmp_path):
    plain = tiny_searcher("proxyless", tmp_path / "a", seed=3)
    penalised = tiny_searcher("proxyless", tmp_path / "b", weight=1.0, seed=3)
    x, y = plain.dataset.valid.x[:32], plain.dataset.valid.y[:32]
    for s in (plain, penalised):
        s.arch_solver.set_learning_rate(0.0)  # alphas stay put, alpha.g is kept to compare
        s.arch_step(x, y)
    term = penalised._penalty_term
    term.forward()
    for p_plain, p_pen, alpha in zip(plain.get_arch_parameters().values(),
                                     penalised.get_arch_parameters().values(),
                                     penalised.table.alphas):
        assert p_pen is alpha
        diff = p_pen.g - p_plain.g  # same samples (same seed): the difference is the penalty's
        assert np.abs(diff).max() > 0
        assert np.isclose(diff.sum(), 0, atol=1e-5)  # a softmax gradient sums to zero


def test_proxyless_rejects_the_multiplicative_log_penalty(tmp_path):
    model, table, _ = tiny_setup()
    penalty = LatencyPenalty(table, mode="log", target=1000.0)
    with pytest.raises(ValueError, match="mode must be one of"):
        ProxylessSearcher(model, tiny_dataset(), table, penalty=penalty, output_dir=str(tmp_path))


def test_bad_arguments_are_refused(tmp_path):
    model, table, _ = tiny_setup()
    with pytest.raises(ValueError, match="batch_size"):
        DartsSearcher(model, tiny_dataset(), table, batch_size=0, output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        DartsSearcher(model, tiny_dataset(), table, net_optimizer="lbfgs", output_dir=str(tmp_path))


@pytest.mark.parametrize("algorithm", ["darts", "proxyless"])
def test_resume_gives_the_same_search_as_an_uninterrupted_run(algorithm, tmp_path):
    straight = tiny_searcher(algorithm, tmp_path / "straight", epochs=2)
    straight.run()

    first = tiny_searcher(algorithm, tmp_path / "first", epochs=1)
    first.run()
    resumed = tiny_searcher(algorithm, tmp_path / "second", epochs=2)
    resumed.load_checkpoint(str(tmp_path / "first"))
    assert resumed.epoch == 1 and resumed.arch_step_count == 2
    resumed.run()
    assert resumed.epoch == 2 and len(resumed.history) == 2
    for a, b in zip(alphas(straight), alphas(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for a, b in zip(straight.get_net_parameters().values(), resumed.get_net_parameters().values()):
        np.testing.assert_allclose(a.d, b.d, rtol=1e-4, atol=1e-5)


def test_checkpoint_of_another_algorithm_is_refused(tmp_path):
    tiny_searcher("darts", tmp_path / "d").run()
    other = tiny_searcher("proxyless", tmp_path / "p")
    with pytest.raises(ValueError, match="'darts' search"):
        other.load_checkpoint(str(tmp_path / "d"))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        other.load_checkpoint(str(tmp_path / "nowhere"))


def test_measure_and_describe_the_derived_architecture(tmp_path):
    searcher = tiny_searcher("darts", tmp_path)
    choices = [1, 4]  # block 2 skipped ('zero')
    arch = searcher.describe_architecture(choices)
    assert arch["choices"] == choices and arch["candidates"][1] == "zero"
    assert arch["latency_ms"] == pytest.approx(searcher.table.for_choices(choices))
    assert arch["param_bytes"] > 0 and arch["flops"] > 0
    assert searcher.measure_latency_ms(choices, n_run=2) > 0


def test_retrain_from_scratch_learns():
    model = MobileNetSpace(choices=[0, 4], **TINY_SPACE)
    ds = load_dataset("digits")
    result = train_from_scratch(model, ds, epochs=5, batch_size=32, max_batches=20, lr=0.2)
    assert result["test_acc"] > 0.3  # 10 classes: chance is 0.1
    assert set(result) == {"train_loss", "valid_acc", "test_acc"}


class _Recorder:
    """Records the logs of every hook (a nas_hw callback)."""

    def __new__(cls):
        from nas_hw.nas.callbacks import Callback

        class Recorder(Callback):
            def __init__(self):
                self.steps, self.epochs = [], []

            def on_arch_step_end(self, logs):
                self.steps.append(dict(logs))

            def on_epoch_end(self, logs):
                self.epochs.append(dict(logs))

        return Recorder()


def test_proxyless_epoch_sampled_latency_is_the_sampled_paths_not_the_argmax(tmp_path):
    """Regression: the epoch-end sampled_latency_ms was read after the evaluation had switched
    every MixedOp to 'max', so it was the argmax architecture's latency."""
    from nas_hw.nas.callbacks import LatencyMonitor

    recorder = _Recorder()
    searcher = tiny_searcher("proxyless", tmp_path, max_batches=3, n_samples=3,
                             callbacks={"monitor": LatencyMonitor(measure_true_latency=False), "rec": recorder})
    searcher.run()
    step_means = [s["sampled_latency_ms"] for s in recorder.steps]
    epoch = recorder.epochs[0]
    assert epoch["sampled_latency_ms"] == pytest.approx(np.mean(step_means))
    # the evaluation leaves the last sampled path active (it does not switch MixedOps to 'max')
    active = [cp.active_index for cp in searcher.choice_points]
    searcher.evaluate("valid")
    assert [cp.active_index for cp in searcher.choice_points] == active
    assert {cp.mode for cp in searcher.choice_points} == {"sample"}


def test_budget_checkpoint_without_derive_fn_is_refused_when_the_searcher_is_built(tmp_path):
    """Regression: it failed only at the end of the first epoch."""
    from nas_hw.nas.callbacks import BudgetCheckpoint, CSVLogger, LatencyMonitor

    from nnabla_nas.module import Module

    model, table, _ = tiny_setup()

    class Raw(Module):  # a model without derive
        def __init__(self, inner):
            Module.__init__(self)
            self.inner = inner

        def call(self, x):
            return self.inner(x)

    raw = Raw(model)
    for cb in (BudgetCheckpoint(), LatencyMonitor()):
        with pytest.raises(ValueError, match=f"derive_fn is required by callback .*{type(cb).__name__}"):
            DartsSearcher(raw, tiny_dataset(), table, callbacks=[cb], output_dir=str(tmp_path))
    DartsSearcher(raw, tiny_dataset(), table, callbacks=[CSVLogger(), LatencyMonitor(measure_true_latency=False)],
                  output_dir=str(tmp_path))
    assert DartsSearcher(model, tiny_dataset(), table, callbacks=[BudgetCheckpoint()],
                         output_dir=str(tmp_path)).derive_fn == model.derive  # the space's own derive
