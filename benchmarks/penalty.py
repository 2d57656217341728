"""Cost of the table queries and of the latency penalty next to one search step.

Space: a MobileNetV2-style space with 20 choice points (4 stages x 5 blocks; kernels 3/5/7 x
expansions 3/6 = 6 inverted-residual candidates, plus 'zero' in the 16 residual blocks: 16
choice points of 7 candidates and 4 of 6), input 1x1x8x8 (the digits shape).

    .venv/bin/python benchmarks/penalty.py [--repeats 2000] [--out benchmarks/results/penalty.json]

Times are medians over repeats (table queries, penalty) or over search steps.
"""
import argparse
import json
import logging
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S
import numpy as np
from nnabla.logger import logger as nnabla_logger

from nas_hw import CandidateTable, LatencyCache, LatencyGraphEstimator, LatencyPenalty
from nas_hw.device import fingerprint
from nas_hw.search.spaces import MobileNetSpace
from nas_hw.space import arch_parameters, net_parameters

nnabla_logger.setLevel(logging.ERROR)


def median_us(fn, repeats):
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2000)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default="benchmarks/results/penalty.json")
    args = p.parse_args(argv)

    space = dict(in_channels=1, stem_channels=8, stage_channels=(8, 16, 16, 24), stage_blocks=(5, 5, 5, 5),
                 stage_strides=(1, 1, 2, 1), kernels=(3, 5, 7), expansions=(3, 6))
    model = MobileNetSpace(mode="full", **space)
    x = nn.Variable((args.batch_size, 1, 8, 8))
    t = nn.Variable((args.batch_size, 1))
    loss = F.mean(F.softmax_cross_entropy(model(x), t))

    est = LatencyGraphEstimator(device_id=0, ext_name="cpu", n_run=10, n_warmup=2,
                                cache=LatencyCache(":memory:"))
    t0 = time.perf_counter()
    table = CandidateTable.build(model, est, input_shape=(1, 1, 8, 8), progress=False)
    build_s = time.perf_counter() - t0
    n_candidates = [len(c) for c in table.costs["latency"]]

    rng = np.random.RandomState(0)
    for a in table.alphas:
        a.d = rng.randn(*a.shape)
    for cp in table.points:  # a sampled subnetwork: one active candidate per choice point
        cp.mixedop._active = int(rng.randint(cp.n_candidates))

    penalty = LatencyPenalty(table, weight=0.1, target=table.expected() * 0.8, mode="hinge")
    arch_loss = penalty.apply(loss)
    term = penalty.penalty_of()

    def penalty_fwd_bwd():
        term.forward(clear_no_need_grad=True)
        term.backward(clear_buffer=True)

    query = {
        "sampled_us": median_us(table.sampled, args.repeats),
        "argmax_us": median_us(table.argmax, args.repeats),
        "expected_us": median_us(table.expected, args.repeats),
        "penalty_forward_backward_us": median_us(penalty_fwd_bwd, max(args.repeats // 4, 10)),
    }

    # One DARTS search step: a weight step on a train batch, an architecture step on a valid batch
    # with the latency penalty in the architecture loss.
    w_solver, a_solver = S.Momentum(0.05, 0.9), S.Adam(3e-3)
    w_solver.set_parameters(net_parameters(model, grad_only=True))
    a_solver.set_parameters(arch_parameters(model))
    data = np.random.RandomState(1)

    def step():
        x.d, t.d = data.randn(*x.shape), data.randint(0, 10, size=t.shape)
        w_solver.zero_grad()
        loss.forward(clear_no_need_grad=True)
        loss.backward(clear_buffer=True)
        w_solver.update()
        x.d, t.d = data.randn(*x.shape), data.randint(0, 10, size=t.shape)
        a_solver.zero_grad()
        arch_loss.forward(clear_no_need_grad=True)
        arch_loss.backward(clear_buffer=True)
        a_solver.update()

    step()
    step_us = median_us(step, args.steps)
    result = {**query, "search_step_us": step_us,
              "penalty_share_of_step": query["penalty_forward_backward_us"] / step_us,
              "table_build_s": build_s, "measurements": est.cache.measurements,
              "choice_points": len(n_candidates), "candidates": n_candidates}
    doc = {"command": "python benchmarks/penalty.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": fingerprint("cpu").key, "python": platform.python_version(),
           "batch_size": args.batch_size, "result": result}
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1)
    for k, v in result.items():
        print(f"{k:32s} {v}")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
