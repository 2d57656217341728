"""Does searching with backend=onnxruntime find networks that run faster on ONNX Runtime than
searching with backend=nnabla, at the same accuracy cost?

For each backend and each latency weight, the default `nas-hw search` (DARTS on nas_hw's
MobileNetV2-style space, digits data) runs with a *relative* penalty, so that the weight means
the same on both backends whatever their absolute latencies:

    arch loss = valid loss + w * (E[latency] - T) / T,   T = the backend's own table at uniform alphas

(`latency.mode=linear latency.target=T`). Then every derived network is timed on ONNX Runtime
(and on nnabla, for reference) side by side, --rounds rounds interleaved, median of rounds; the
retrained accuracy is what the search reports. The load average is recorded.

    .venv/bin/python benchmarks/onnxruntime_search.py                   # weights 0.3,1,3; ~1 h under load
    .venv/bin/python benchmarks/onnxruntime_search.py --quick           # tiny epochs: proves it works
    .venv/bin/python benchmarks/onnxruntime_search.py --seeds 0,1,2 table.input_shape=[1,1,32,32]
"""
import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
from datetime import datetime, timezone

import nnabla as nn
from nnabla.logger import logger as nnabla_logger

import nas_hw  # noqa: F401
from nas_hw.app.pipeline import run_search, setup
from nas_hw.estimators.network import Profiler
from nas_hw.measure.backends import make_backend
from nas_hw.nas.table import CandidateTable

nnabla_logger.setLevel(logging.ERROR)
CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "nas_hw", "app", "conf")


def compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from nas_hw.app.config import validate

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return validate(hydra_compose(config_name="config", overrides=list(overrides)))


def uniform_table_latency(overrides):
    """The backend's table latency at uniform alphas (the relative penalty's T), in ms."""
    cfg = compose(overrides)
    s = setup(cfg)
    try:
        with nn.context_scope(s.device.context):
            table = CandidateTable.build(s.model, s.estimator, input_shape=s.deploy_shape, progress=False)
        return table.expected(unit="m")
    finally:
        s.cache.close()


def load():
    return [round(x, 2) for x in os.getloadavg()]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="0.3,1,3")
    p.add_argument("--seeds", default="0")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--n-run", type=int, default=200, help="runs per whole-network timing")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--cache", default=None, help="latency cache (default: a fresh temporary file)")
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="more nas-hw search overrides (space=..., table.input_shape=...)")
    args = p.parse_args(argv)
    base = ["progress=false", "reference.mode=off", "~callbacks.tensorboard"] + list(args.overrides)
    if args.quick:
        args.weights, args.rounds, args.n_run = "1", 2, 50
        base += ["search.epochs=1", "search.warmup_epochs=0", "search.max_batches=3", "retrain.epochs=1",
                 "retrain.max_batches=3", "estimator.n_run=5", "callbacks.monitor.n_run=5"]
    out = args.out or os.path.join(os.path.dirname(__file__), "results",
                                   "onnxruntime_search_quick.json" if args.quick else "onnxruntime_search.json")
    work = tempfile.mkdtemp(prefix="nas_hw_ortsearch_")
    cache = args.cache or os.path.join(work, "latency.sqlite")
    base.append(f"cache.path={cache}")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    loads = {"start": load()}
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for backend in ("nnabla", "onnxruntime"):
            common = base + [f"backend={backend}", f"seed={seed}"]
            target = uniform_table_latency(common)
            for w in [float(x) for x in args.weights.split(",")]:
                run_dir = os.path.join(work, f"{backend}-w{w}-s{seed}")
                report = run_search(compose(common + ["latency.mode=linear", f"latency.weight={w}",
                                                      f"latency.target={target}"]), run_dir)
                runs.append({"backend": backend, "weight": w, "seed": seed, "target_ms": target,
                             "choices": report["choices"], "candidates": report["candidates"],
                             "search_valid_acc": report["search_valid_acc"], "valid_acc": report["valid_acc"],
                             "test_acc": report["test_acc"], "estimated_ms": report["estimated_latency_ms"]})
                print(f"{backend} w={w} seed={seed}: {report['candidates']} test acc {report['test_acc']}, "
                      f"load {load()}", file=sys.stderr, flush=True)
    loads["after_searches"] = load()
    # every derived network timed on both backends, rounds interleaved
    cfg = compose(base)
    s = setup(cfg)
    ort = make_backend("onnxruntime")
    try:
        with nn.context_scope(s.device.context):
            graphs = []
            for r in runs:
                net = s.model.derive(list(r["choices"]))
                net.apply(training=False)
                graphs.append(net(nn.Variable(tuple(s.deploy_shape))))
            times = {b: [[] for _ in runs] for b in ("onnxruntime", "nnabla")}
            for _ in range(args.rounds):
                for i, g in enumerate(graphs):
                    for name, backend in (("onnxruntime", ort), ("nnabla", "nnabla")):
                        prof = Profiler(g, n_run=args.n_run, n_warmup=10, per_function=False, backend=backend)
                        times[name][i].append(prof.run()["forward_all_stats"].median * 1e3)
    finally:
        s.cache.close()
    loads["end"] = load()
    for i, r in enumerate(runs):
        r["ort_ms"] = statistics.median(times["onnxruntime"][i])
        r["ort_rounds_ms"] = times["onnxruntime"][i]
        r["nnabla_ms"] = statistics.median(times["nnabla"][i])
    report = {"command": " ".join(["python", "benchmarks/onnxruntime_search.py"] + (argv or sys.argv[1:])),
              "started": started, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "loads": loads, "settings": vars(args), "runs": runs}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print("| searched on | weight | seed | derived (candidates) | test acc | ORT ms (measured) | nnabla ms (measured) |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for r in runs:
        print(f"| {r['backend']} | {r['weight']} | {r['seed']} | {' '.join(r['candidates'] or [])} | "
              f"{r['test_acc']:.3f} | {r['ort_ms']:.4f} | {r['nnabla_ms']:.4f} |")
    print(f"load {loads}; wrote {out}")


if __name__ == "__main__":
    main()
