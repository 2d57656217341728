"""nnabla_nas's own DartsSearcher (or ProxylessNasSearcher) with nas_hw's latency penalty and
callbacks, on the embedded digits data (CPU, a few steps)::

    python examples/nnabla_nas_runner.py                          # DARTS, 2 epochs, latency penalty 0.1
    python examples/nnabla_nas_runner.py --algorithm proxyless --epochs 3 --out runs/pnas

Everything but the "nas_hw" block is what an nnabla_nas user already has: a real SearchNet,
nnabla_nas's optimizers, data loaders, hyper-parameters and searcher. The nas_hw block adds the
candidate table, the penalty and the callbacks to that searcher (nas_hw/search/runner.py says how).
The digits (1x8x8) are resized to 16x16 by nearest neighbour: nnabla_nas's DARTS SearchNet pools
an 8x8 map before its classifier, and one reduction cell halves 16x16 to that.
"""
import argparse
import functools
import json
import os
import sys
import time
from types import SimpleNamespace

import nas_hw  # noqa: F401  (first: lets the nnabla-nas 0.15.0 wheel's SearchNets and Runner import)
import nnabla as nn
from nnabla.ext_utils import get_extension_context
from nnabla_nas.contrib.classification import darts
from nnabla_nas.optimizer import Optimizer
from nnabla_nas.runner.searcher import DartsSearcher, ProxylessNasSearcher

from nas_hw import CandidateTable, LatencyGraphEstimator, LatencyPenalty
from nas_hw.nas.callbacks import BudgetCheckpoint, CSVLogger, LatencyMonitor
from nas_hw.nnabla_nas_compat import hydra_run_dir
from nas_hw.search.datasets import Split, adapt_images, load_dataset
from nas_hw.search.runner import SplitLoader, hardware_aware
from nas_hw.search.spaces.searchnets import deriver

SEARCHERS = {"darts": DartsSearcher, "proxyless": ProxylessNasSearcher}
SIZE = 16


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algorithm", choices=sorted(SEARCHERS), default="darts")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--samples", type=int, default=128, help="train and valid images used (the steps per epoch "
                                                            "are samples // batch)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--weight", type=float, default=0.1, help="latency penalty weight (per ms)")
    p.add_argument("--out", default=os.path.join("outputs", "nnabla_nas_runner", time.strftime("%Y-%m-%d_%H-%M-%S")))
    p.add_argument("--cache", default=None, help="latency cache (default: nas_hw's per-user cache)")
    return p.parse_args(argv)


def main(argv=None):
    a = parse(argv)
    ctx = get_extension_context("cpu")
    nn.set_default_context(ctx)

    # -- the nnabla_nas user's own set-up ---------------------------------------------------
    data = adapt_images(load_dataset("digits", seed=0), (1, SIZE, SIZE))
    mode = "full" if a.algorithm == "darts" else "sample"
    build = functools.partial(darts.SearchNet, in_channels=1, init_channels=4, num_cells=1, num_classes=10,
                              num_choices=2, multiplier=2, stem_multiplier=1, shared=True, mode=mode)
    model = build()
    optimizer = {"train": Optimizer(name="Momentum", lr=0.05, momentum=0.9),
                 "valid": Optimizer(name="Adam", alpha=3e-3, beta1=0.5, beta2=0.999)}
    n = a.samples
    dataloader = {"train": SplitLoader(Split(data.train.x[:n], data.train.y[:n]), a.batch, seed=0),
                  "valid": SplitLoader(Split(data.valid.x[:n], data.valid.y[:n]), a.batch, seed=1)}
    hparams = {"batch_size_train": a.batch, "mini_batch_train": a.batch, "batch_size_valid": a.batch,
               "mini_batch_valid": a.batch, "input_shapes": [[1, SIZE, SIZE]], "target_shapes": [[1]],
               "loss_weights": None, "epoch": a.epochs, "warmup": 0}
    # one process on CPU (what nnabla_nas's CommunicatorWrapper falls back to there)
    args = {"comm": SimpleNamespace(n_procs=1, rank=0), "event": None, "output_path": ".",
            "print_frequency": 10, "save_nnp": False, "no_visualize": False}

    # -- nas_hw: the candidate table, the penalty and the callbacks --------------------------
    rule = "darts" if a.algorithm == "darts" else "argmax"  # DARTS's derivation; PNAS takes the argmax
    table = CandidateTable.build(model, LatencyGraphEstimator(n_run=5, n_warmup=1, cache=a.cache),
                                 input_shape=(1, 1, SIZE, SIZE), progress=False, rule=rule)
    Searcher = hardware_aware(SEARCHERS[a.algorithm])
    callbacks = {"monitor": LatencyMonitor(every_n_arch_steps=1, n_run=5),
                 "best": BudgetCheckpoint(filename="budget_arch.json"),  # arch.json is nnabla_nas's own
                 "csv": CSVLogger()}

    os.makedirs(a.out, exist_ok=True)
    with hydra_run_dir(a.out):  # nnabla_nas's Runner reads its output path from Hydra
        searcher = Searcher(model, optimizer, {}, dataloader, hparams, args, table=table,
                            penalty=LatencyPenalty(weight=a.weight), callbacks=callbacks,
                            derive_fn=deriver(build))
        searcher.run()
    choices = table.argmax_choices()
    summary = {"algorithm": a.algorithm, "choices": choices, "candidates": searcher.choice_names(choices),
               "estimated_latency_ms": table.argmax(unit="m"), "expected_latency_ms": table.expected(unit="m"),
               "epochs": a.epochs, "output_dir": os.path.abspath(a.out)}
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
