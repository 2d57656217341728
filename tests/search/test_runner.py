"""nas_hw's penalty and callbacks in nnabla_nas's own Runner (nas_hw/search/runner.py), with the
real DartsSearcher and ProxylessNasSearcher of the nnabla-nas 0.15.0 wheel, a few steps each."""
import csv
import functools
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

import nas_hw  # noqa: F401
from nnabla_nas.contrib.classification import darts
from nnabla_nas.optimizer import Optimizer
from nnabla_nas.runner.searcher import DartsSearcher, FairNasSearcher, ProxylessNasSearcher

from nas_hw import CandidateTable, LatencyCache, LatencyGraphEstimator, LatencyPenalty
from nas_hw.nas.callbacks import BudgetCheckpoint, CSVLogger, LatencyConstraint, LatencyMonitor
from nas_hw.nas.monitors import TensorBoardLogger
from nas_hw.nnabla_nas_compat import hydra_run_dir
from nas_hw.search.datasets import Split, adapt_images, load_dataset
from nas_hw.search.runner import SplitLoader, _PenalisedUpdate, hardware_aware
from nas_hw.search.spaces.searchnets import deriver
from tests.searchnets_util import FakeTimer

SIZE, BATCH = 16, 16


def build_model(mode):
    return functools.partial(darts.SearchNet, in_channels=1, init_channels=4, num_cells=1, num_classes=10,
                             num_choices=2, multiplier=2, stem_multiplier=1, shared=True, mode=mode)


def runner_args(epochs=2, n=32):
    data = adapt_images(load_dataset("digits"), (1, SIZE, SIZE))
    loaders = {"train": SplitLoader(Split(data.train.x[:n], data.train.y[:n]), BATCH, seed=0),
               "valid": SplitLoader(Split(data.valid.x[:n], data.valid.y[:n]), BATCH, seed=1)}
    hparams = {"batch_size_train": BATCH, "mini_batch_train": BATCH, "batch_size_valid": BATCH,
               "mini_batch_valid": BATCH, "input_shapes": [[1, SIZE, SIZE]], "target_shapes": [[1]],
               "loss_weights": None, "epoch": epochs, "warmup": 0}
    args = {"comm": SimpleNamespace(n_procs=1, rank=0), "event": None, "output_path": ".",
            "print_frequency": 100, "save_nnp": False, "no_visualize": False}
    optimizer = {"train": Optimizer(name="Momentum", lr=0.05, momentum=0.9),
                 "valid": Optimizer(name="Adam", alpha=0.01, beta1=0.5, beta2=0.999)}
    return optimizer, loaders, hparams, args


def setup(algorithm, epochs=2):
    build = build_model("full" if algorithm == "darts" else "sample")
    model = build()
    table = CandidateTable.build(model, LatencyGraphEstimator(n_run=1, n_warmup=0, cache=LatencyCache(":memory:"),
                                                              timer=FakeTimer()),
                                 input_shape=(1, 1, SIZE, SIZE), progress=False,
                                 rule="darts" if algorithm == "darts" else "argmax")
    return build, model, table, runner_args(epochs)


@pytest.mark.parametrize("algorithm,cls", [("darts", DartsSearcher), ("proxyless", ProxylessNasSearcher)])
def test_the_real_searcher_runs_with_the_penalty_and_the_callbacks(algorithm, cls, tmp_path):
    build, model, table, (optimizer, loaders, hparams, args) = setup(algorithm)
    before = [a.d.copy() for a in table.alphas]
    callbacks = {"monitor": LatencyMonitor(every_n_arch_steps=1, n_run=2),
                 "best": BudgetCheckpoint(filename="budget_arch.json"), "csv": CSVLogger(),
                 "tb": TensorBoardLogger(log_dir="tb_nas_hw")}
    with hydra_run_dir(tmp_path):
        searcher = hardware_aware(cls)(model, optimizer, {}, loaders, hparams, args, table=table,
                                       penalty=LatencyPenalty(weight=0.1), callbacks=callbacks,
                                       derive_fn=deriver(build))
        assert isinstance(searcher, cls)
        searcher.run()
    assert searcher.arch_step_count == 4  # 2 epochs x 2 batches
    assert any(not np.array_equal(b, a.d) for b, a in zip(before, table.alphas))
    rows = list(csv.DictReader(open(tmp_path / "search_log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for r in rows:
        assert 0 <= float(r["valid_acc"]) <= 1 and float(r["true_latency_ms"]) > 0
    assert rows[-1]["choices"] == " ".join(map(str, table.argmax_choices()))  # by the table's (DARTS) rule
    if algorithm == "proxyless":
        assert all(float(r["sampled_latency_ms"]) > 0 for r in rows)
    best = json.loads((tmp_path / "budget_arch.json").read_text())
    assert len(best["candidates"]) == len(table.alphas) and best["latency_ms"] > 0
    assert os.path.isfile(tmp_path / "arch.h5")  # nnabla_nas's own outputs are still written
    assert len(callbacks["monitor"].history) == 4  # every architecture step was seen
    assert list((tmp_path / "tb_nas_hw").glob("events.out.tfevents.*"))


def test_darts_valid_loss_carries_the_penalty_gradient(tmp_path):
    """The alphas' gradient of the runner's valid loss is the plain loss's plus the penalty's."""
    build, model, table, (optimizer, loaders, hparams, args) = setup("darts")
    penalty = LatencyPenalty(weight=0.5)
    with hydra_run_dir(tmp_path):
        searcher = hardware_aware(DartsSearcher)(model, optimizer, {}, loaders, hparams, args, table=table,
                                                 penalty=penalty)
        plain = hardware_aware(DartsSearcher)(model, runner_args()[0], {}, loaders, hparams, args, table=table)
        searcher.update_graph("valid")
        penalised_loss = searcher.placeholder["valid"]["loss"]
        plain.update_graph("valid")
        plain_loss = plain.placeholder["valid"]["loss"]
    batch = loaders["valid"].next()
    grads = []
    for p, loss in ((searcher.placeholder["valid"], penalised_loss), (plain.placeholder["valid"], plain_loss)):
        p["inputs"][0].d, p["targets"][0].d = batch["inputs"][0], batch["targets"][0]
        for a in table.alphas:
            a.grad.zero()
        loss.forward()
        loss.backward()
        grads.append([a.g.copy() for a in table.alphas])
    for a in table.alphas:
        a.grad.zero()
    term = penalty.penalty_of(None)
    term.forward()
    term.backward()
    for with_penalty, without, alpha in zip(*grads, table.alphas):
        np.testing.assert_allclose(with_penalty - without, alpha.g, rtol=1e-4, atol=1e-7)
        assert np.abs(alpha.g).max() > 0


def test_proxyless_update_adds_the_penalty_gradient():
    _, _, table, _ = setup("proxyless")
    penalty = LatencyPenalty(table, weight=1.0)
    seen = []
    inner = SimpleNamespace(update=lambda: seen.append([a.g.copy() for a in table.alphas]), name="inner")
    reinforce = [np.full(a.shape, 0.25, dtype=np.float32) for a in table.alphas]
    for a, g in zip(table.alphas, reinforce):
        a.g = g
    wrapped = _PenalisedUpdate(inner, penalty.penalty_of(None))
    wrapped.update()
    assert wrapped.name == "inner"  # everything else is the optimizer's own
    e = penalty.expected_cost()
    for a in table.alphas:
        a.grad.zero()
    e.forward()
    e.backward()
    for got, g, a in zip(seen[0], reinforce, table.alphas):
        np.testing.assert_allclose(got, g + a.g, rtol=1e-5, atol=1e-7)


def test_refusals_come_when_the_searcher_is_built(tmp_path):
    build, model, table, (optimizer, loaders, hparams, args) = setup("proxyless")
    cls = hardware_aware(ProxylessNasSearcher)
    with hydra_run_dir(tmp_path):
        with pytest.raises(ValueError, match="derive_fn is required by callback 'best'"):
            cls(model, optimizer, {}, loaders, hparams, args, table=table, callbacks={"best": BudgetCheckpoint()})
        with pytest.raises(ValueError, match="'arch.json', which nnabla_nas's searchers write"):
            cls(model, optimizer, {}, loaders, hparams, args, table=table, derive_fn=deriver(build),
                callbacks={"best": BudgetCheckpoint()})
        with pytest.raises(ValueError, match="LatencyConstraint.*compute their reward themselves"):
            cls(model, optimizer, {}, loaders, hparams, args, table=table, callbacks=[LatencyConstraint(1.0)])
        with pytest.raises(ValueError, match="mode must be one of \\('linear', 'hinge'\\), got 'log'"):
            cls(model, optimizer, {}, loaders, hparams, args, table=table,
                penalty=LatencyPenalty(mode="log", target=2.0, unit="u"))
        with pytest.raises(TypeError, match="FairNasSearcher trains no architecture parameters"):
            hardware_aware(FairNasSearcher)(model, optimizer, {}, loaders, dict(hparams, num_search_samples=0),
                                            args, table=table)
    assert set(optimizer) == {"train", "valid"} and not isinstance(optimizer["valid"], _PenalisedUpdate)
