"""Accuracy of layer-based latency estimates against measured whole-network latency.

For K random fixed subnetworks of the MobileNetV2-style and of the DARTS-style space (nas_hw's,
or with ``--spaces mobilenet-searchnet darts-searchnet`` the real nnabla_nas SearchNets), at each
input resolution, one interleaved run measures, network after network:

* the true latency: nas_hw's network-based ``Profiler`` (its robust statistic, the one every
  nas_hw latency is, and the min of R forwards), twice, the second time in a later pass over the
  networks (the noise floor compares the two);
* nas_hw's raw and calibrated estimates with the graph estimator (per function) and the
  module estimator (per leaf module), each calibrated on <= 5 *other* subnetworks;
* nnabla_nas 0.15's ``LatencyGraphEstimator`` and ``LatencyEstimator`` (only
  ``nnabla_nas.utils.estimator.latency`` is imported);
* the in-context per-function sum (function hooks inside a whole forward).

Writes a JSON file, a markdown report and a scatter plot. Every layer is measured afresh
(a throw-away cache in a temporary directory), so numbers are from this run only.

Usage:
    .venv/bin/python benchmarks/accuracy.py            # the documented run
    .venv/bin/python benchmarks/accuracy.py --k 4 --runs 5 --resolutions 16   # smoke test
"""
import argparse
import datetime
import json
import logging
import os
import platform
import shlex
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import nnabla as nn  # noqa: E402
from nnabla.logger import logger as nnabla_logger  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402

from nas_hw.estimators.calibrated import Calibrator, build_inference_graph, random_choices  # noqa: E402
from nas_hw.estimators.calibration import calibration_summary  # noqa: E402
from nas_hw.measure.device import fingerprint  # noqa: E402
from nas_hw.estimators.graph import LatencyGraphEstimator  # noqa: E402
from nas_hw.estimators.incontext import InContextProfiler  # noqa: E402
from nas_hw.estimators.module import LatencyEstimator  # noqa: E402
from nas_hw.estimators.network import Profiler  # noqa: E402
from nas_hw.search.spaces import DartsSpace, MobileNetSpace  # noqa: E402

logger = logging.getLogger("accuracy")

SPACES = ("mobilenet", "darts")
#: The real nnabla_nas 0.15 SearchNets (benchmarks/searchnets.py).
REAL_SPACES = ("mobilenet-searchnet", "darts-searchnet")
N_CALIBRATION = 5
# (key, label) of every estimate compared with the true latency.
ESTIMATES = (
    ("nnas_graph", "nnabla_nas LatencyGraphEstimator"),
    ("nnas_module", "nnabla_nas LatencyEstimator"),
    ("graph_raw", "nas_hw graph, raw"),
    ("graph_cal", "nas_hw graph, calibrated"),
    ("module_raw", "nas_hw module, raw"),
    ("module_cal", "nas_hw module, calibrated"),
    ("incontext", "in-context per-function sum"),
    ("true_b", "noise floor (2nd true measurement)"),
)


def n_layers_of(estimator):
    return estimator.n_layers


def space_config(name, resolution, small=False):
    """Small-width spaces; the MobileNet stem has stride 2 at >= 128 px, as MobileNetV2. The real
    SearchNets come from ``benchmarks/searchnets.py``."""
    if name in REAL_SPACES:
        from searchnets import build_searchnet

        return (lambda **kw: build_searchnet(name.split("-")[0], resolution, small=small)), {}
    if name == "mobilenet":
        return MobileNetSpace, dict(in_channels=3, n_classes=10, stem_channels=8, stage_channels=(16, 24),
                                    stage_blocks=(2, 2), stage_strides=(1, 2), kernels=(3, 5, 7),
                                    expansions=(3, 6), zero=True,
                                    stem_stride=2 if resolution >= 128 else 1)
    return DartsSpace, dict(in_channels=3, n_classes=10, channels=8 if resolution < 128 else 4, n_cells=3,
                            n_nodes=2, reduction_cells=(1,))


def metrics(estimate, true):
    """MAPE (%), fraction within +-10 %, mean estimate/true ratio, Kendall tau, Spearman rho."""
    est = np.asarray(estimate, dtype=np.float64)
    tru = np.asarray(true, dtype=np.float64)
    ratio = est / tru
    ape = np.abs(ratio - 1.0)
    return {"mape_pct": float(100 * ape.mean()), "within_10pct": float(np.mean(ape <= 0.10)),
            "mean_ratio": float(ratio.mean()), "kendall_tau": float(kendalltau(est, tru)[0]),
            "spearman": float(spearmanr(est, tru)[0]), "n": int(len(est))}


def true_latency(out, runs, warmup):
    stats = Profiler(out, device_id=0, ext_name="cpu", n_run=runs, n_warmup=warmup,
                     max_measure_execution_time=600, time_scale="m", per_function=False).run()["forward_all_stats"]
    if stats.n_measured < runs:
        raise RuntimeError(f"only {stats.n_measured} of {runs} forwards were timed")
    return stats.to("m", "value"), stats.to("m", "min")  # the robust statistic, as every latency


def sample_choices(space, n, rng):
    seen = []
    while len(seen) < n:
        ch = tuple(random_choices(space, rng))
        if ch not in seen:
            seen.append(ch)
    return [list(c) for c in seen]


def run_combo(space_name, resolution, args, cache_path, nnas):
    cls, config = space_config(space_name, resolution, getattr(args, "small", False))
    space = cls(**config)
    shape = (1, 3, resolution, resolution)
    rng = np.random.RandomState(args.seed + resolution + (0 if space_name == "mobilenet" else 7))
    evaluated = sample_choices(space, args.k, rng)
    layer = dict(ext_name="cpu", device_id=0, n_run=args.runs, n_warmup=args.warmup,
                 max_measure_execution_time=10, cache=cache_path)
    graph_est = LatencyGraphEstimator(**layer)
    module_est = LatencyEstimator(**layer)
    t0 = time.time()
    cals, reuse = {}, {}
    for key, est in (("graph", graph_est), ("module", module_est)):
        calibrator = Calibrator(est, n_run=args.runs, n_warmup=args.warmup, max_points=N_CALIBRATION)
        cals[key] = calibrator.calibrate_space(space, shape, n_points=N_CALIBRATION, seed=args.seed,
                                               exclude=evaluated)
        again = Calibrator(est, n_run=args.runs, n_warmup=args.warmup)
        again.calibrate_space(space, shape, n_points=N_CALIBRATION, seed=args.seed, exclude=evaluated)
        reuse[key] = {"first_run_measurements": calibrator.n_measurements,
                      "second_run_measurements": again.n_measurements}
    calibration_s = time.time() - t0
    nnas_graph, nnas_module = nnas
    rows = []
    for i, choices in enumerate(evaluated):
        net = space.derive(choices)
        x, out = build_inference_graph(net, shape)
        row = {"choices": choices}
        row["graph_raw"] = graph_est.get_estimation(out, inputs=[x])
        row["graph_layers"] = n_layers_of(graph_est)
        row["graph_cal"] = cals["graph"].apply(row["graph_raw"], row["graph_layers"])
        row["module_raw"] = module_est.get_estimation(net)
        row["module_layers"] = n_layers_of(module_est)
        row["module_cal"] = cals["module"].apply(row["module_raw"], row["module_layers"])
        row["nnas_graph"] = float(nnas_graph.get_estimation(out))
        row["nnas_module"] = float(nnas_module.get_estimation(net))
        row["true_a"], row["true_a_min"] = true_latency(out, args.runs, args.warmup)
        if getattr(args, "incontext", True):
            prof = InContextProfiler(out, ext_name="cpu", n_run=args.runs, n_warmup=args.warmup)
            prof.run()
            row["incontext"] = prof.total()
            row["incontext_hooked_forward"] = prof.forward_hooked
        row["loadavg_1min"] = os.getloadavg()[0]
        rows.append(row)
        logger.info("%s %dpx net %d/%d: true %.3f ms, graph raw %.3f cal %.3f, module raw %.3f cal %.3f, "
                    "nnas graph %.3f module %.3f, in-context %.3f", space_name, resolution, i + 1, len(evaluated),
                    row["true_a"], row["graph_raw"], row["graph_cal"], row["module_raw"], row["module_cal"],
                    row["nnas_graph"], row["nnas_module"], row.get("incontext", float("nan")))
    # second, later pass: an independent true measurement of the same networks (noise floor)
    for row in reversed(rows):
        net = space.derive(row["choices"])
        _, out = build_inference_graph(net, shape)
        row["true_b"], row["true_b_min"] = true_latency(out, args.runs, args.warmup)
        row["loadavg_1min_b"] = os.getloadavg()[0]
    true = [r["true_a"] for r in rows]
    table = {key: metrics([r[key] for r in rows], true) for key, _ in ESTIMATES if key in rows[0]}
    goal = {}
    for key in ("graph_cal", "module_cal"):
        m = table[key]
        goal[key] = {"ratio_within_0.95_1.05": bool(0.95 <= m["mean_ratio"] <= 1.05),
                     "mape_within_noise_plus_2": bool(m["mape_pct"] <= table["true_b"]["mape_pct"] + 2.0)}
        goal[key]["met"] = all(goal[key].values())
    return {"space": space_name, "resolution": resolution, "input_shape": list(shape),
            "space_class": type(space).__name__, "space_config": {
                k: list(v) if isinstance(v, tuple) else v for k, v in (getattr(space, "config", None) or config).items()},
            "n_choice_groups": space.n_choice_groups,
            "calibration": {k: calibration_summary(c) for k, c in cals.items()},
            "calibration_reuse": reuse, "calibration_seconds": calibration_s,
            "metrics": table, "goal": goal, "rows": rows, "seconds": time.time() - t0}


def write_markdown(result, path):
    meta = result["meta"]
    lines = ["# Accuracy of latency estimates (measured)", "",
             f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']}  ",
             f"Date: {meta['date']} (wall time of the run: {meta['wall_seconds'] / 60:.1f} min)  ",
             f"Versions: nnabla {meta['nnabla']}, nnabla_nas {meta['nnabla_nas']}  ",
             f"Conditions: 1-minute load average {meta['loadavg_min']:.1f}–{meta['loadavg_max']:.1f} during the "
             f"run on {meta['cpus']} cores (other jobs shared the machine when the load exceeds the core count; "
             "the noise floor row shows how much that moved the measurements)", "",
             f"K = {meta['k']} random fixed subnetworks per space and resolution (batch 1, float32, CPU); "
             f"true latency = the robust statistic (median of round minimums) of R = {meta['runs']} forwards "
             "(nas_hw `Profiler`, network-based, "
             f"after {meta['warmup']} warm-up forwards); every layer estimator also times each layer "
             f"{meta['runs']} times. Calibration: {N_CALIBRATION} other subnetworks (disjoint from the K) per "
             "space, resolution and estimator, model `true = scale*raw + per_layer*n_layers + const`. "
             "Noise floor = the same metrics between two independent true measurements of the same "
             "networks (the second taken in a later pass).", "",
             "Space sizes: " + "; ".join(
                 f"{c['space_class']} at {c['resolution']}px: "
                 + ", ".join(f"{k}={v}" for k, v in c["space_config"].items() if k not in ("in_channels", "n_classes"))
                 for c in result["combos"]), ""]
    for res in meta["resolutions"]:
        combos = [c for c in result["combos"] if c["resolution"] == res]
        lines += [f"## 1x3x{res}x{res}", "",
                  "| estimate | " + " | ".join(f"{c['space']} MAPE % | {c['space']} within ±10 % | "
                                                f"{c['space']} mean est/true | {c['space']} Kendall τ | "
                                                f"{c['space']} Spearman ρ" for c in combos) + " |",
                  "|---|" + "---:|" * (5 * len(combos))]
        for key, label in ESTIMATES:
            if any(key not in c["metrics"] for c in combos):
                continue
            cells = []
            for c in combos:
                m = c["metrics"][key]
                cells += [f"{m['mape_pct']:.1f}", f"{100 * m['within_10pct']:.0f} %", f"{m['mean_ratio']:.3f}",
                          f"{m['kendall_tau']:.2f}", f"{m['spearman']:.2f}"]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
        for c in combos:
            t = [r["true_a"] for r in c["rows"]]
            lines.append(f"- {c['space']}: true latency {min(t):.3f}–{max(t):.3f} ms (median "
                         f"{float(np.median(t)):.3f} ms).")
            for key in ("graph", "module"):
                cal = c["calibration"][key]
                g = c["goal"][f"{key}_cal"]
                lines.append(f"  - {key} calibration: scale {cal['scale']:.3f}, per_layer "
                             f"{1000 * cal['per_layer']:.2f} µs/layer, const {1000 * cal['const']:.1f} µs "
                             f"(fitted {', '.join(cal['fitted'])}; in-sample MAPE {cal['mape_fit_pct']:.1f} %"
                             + (f"; {cal['note']}" if cal["note"] else "") + "); reuse: "
                             f"{c['calibration_reuse'][key]['first_run_measurements']} whole-network measurements "
                             f"the first time, {c['calibration_reuse'][key]['second_run_measurements']} the second. "
                             f"Goal {'met' if g['met'] else 'NOT met'} (ratio in [0.95, 1.05]: "
                             f"{g['ratio_within_0.95_1.05']}, MAPE ≤ noise + 2: {g['mape_within_noise_plus_2']}).")
        lines.append("")
    lines += ["## Goal", "", result["goal_summary"], "", "![scatter](accuracy_scatter.png)", "",
              "## How to read this", "",
              "- *raw*: the sum of layers timed one at a time (mean of R runs each, nas_hw cache); "
              "*calibrated*: `scale*raw + per_layer*n_layers + const` fitted (bounded least squares, "
              "relative residuals, all parameters >= 0) on 5 other subnetworks of the same space and "
              "resolution, stored in the cache and reused (the second calibrator takes 0 measurements).",
              "- nnabla_nas 0.15's `LatencyEstimator` sums leaf modules with `need_grad` (its override "
              "does not look at `is_active`; these derived networks have no MixedOp so it does not "
              "matter); modules that run no function (`Identity`, `Dropout` in inference) fail inside "
              "its profiler and count 0 (it logs a warning), and operations outside modules (residual "
              "additions, the sums and concatenations of DARTS cells) are never counted. Its "
              "`LatencyGraphEstimator` times every function alone, like nas_hw's graph estimator.",
              "- *in-context*: every function timed between nnabla's `function_pre_hook` and "
              "`function_post_hook` inside whole forwards (median per function, summed); each "
              "function's time includes one timer read and hook return, so it overestimates on "
              "networks of many tiny functions.",
              "- The noise floor is what a perfect estimator would score against a second measurement: "
              "an estimator cannot be judged more finely than that row. When other jobs share the "
              "CPU (load above the core count), isolated layer timings taken at one moment and "
              "whole-network timings taken at another disagree by tens of percent, and every row "
              "moves with it.", ""]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    combos = result["combos"]
    fig, axes = plt.subplots(1, len(combos), figsize=(4.2 * len(combos), 4.2), squeeze=False)
    shown = [("nnas_graph", "o", "nnabla_nas graph"), ("nnas_module", "s", "nnabla_nas module"),
             ("graph_raw", "^", "nas_hw graph raw"), ("graph_cal", "*", "nas_hw graph calibrated"),
             ("module_cal", "P", "nas_hw module calibrated"), ("incontext", "x", "in-context sum")]
    for ax, c in zip(axes[0], combos):
        true = np.array([r["true_a"] for r in c["rows"]])
        for key, marker, label in shown:
            if key not in c["rows"][0]:
                continue
            ax.scatter(true, [r[key] for r in c["rows"]], marker=marker, s=18, label=label, alpha=0.75)
        lo, hi = true.min() * 0.6, true.max() * 1.5
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.plot([lo, hi], [lo * 1.1, hi * 1.1], "k:", lw=0.6)
        ax.plot([lo, hi], [lo * 0.9, hi * 0.9], "k:", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("true latency (ms, robust statistic)")
        ax.set_ylabel("estimate (ms)")
        ax.set_title(f"{c['space']} 1x3x{c['resolution']}x{c['resolution']}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def nnabla_nas_estimators(args):
    """nnabla_nas 0.15's graph and module latency estimators with the run's settings."""
    from nnabla_nas.utils.estimator.latency import LatencyEstimator as NnasModule
    from nnabla_nas.utils.estimator.latency import LatencyGraphEstimator as NnasGraph

    settings = dict(device_id=0, ext_name="cpu", n_run=args.runs, n_warmup=args.warmup)
    return NnasGraph(**settings), NnasModule(**settings)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=20, help="evaluated subnetworks per space and resolution")
    p.add_argument("--runs", type=int, default=30, help="timed forwards per true measurement and per layer")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--resolutions", type=int, nargs="+", default=[32, 224])
    p.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES + REAL_SPACES,
                   help="nas_hw's spaces (default) and/or the real nnabla_nas SearchNets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=os.path.join(HERE, "results", "accuracy.json"))
    p.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks_accuracy.md"))
    p.add_argument("--plot", default=os.path.join(ROOT, "docs", "accuracy_scatter.png"))
    args = p.parse_args(argv)
    if args.k < 2:
        p.error(f"--k must be >= 2 (rank correlations need two networks), got {args.k}")
    if args.runs < 1:
        p.error(f"--runs must be >= 1, got {args.runs}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    nnabla_logger.setLevel(logging.WARNING)

    import nnabla_nas
    started = time.time()
    combos = []
    with tempfile.TemporaryDirectory() as tmp:
        cache_path = os.path.join(tmp, "latency.sqlite")
        nnas = nnabla_nas_estimators(args)
        for res in args.resolutions:
            for name in args.spaces:
                combos.append(run_combo(name, res, args, cache_path, nnas))
                logger.info("%s %dpx done in %.0f s", name, res, combos[-1]["seconds"])
    fp = fingerprint("cpu", 0)
    loads = [r[k] for c in combos for r in c["rows"] for k in ("loadavg_1min", "loadavg_1min_b")]
    goals = [(c["space"], c["resolution"], k, g["met"]) for c in combos for k, g in c["goal"].items()]
    met = [g for g in goals if g[3]]
    summary = (f"Goal (calibrated mean est/true in [0.95, 1.05] and MAPE ≤ noise floor + 2 points) met in "
               f"{len(met)} of {len(goals)} (space, resolution, estimator) cases"
               + ("." if len(met) == len(goals) else ": not met for " + ", ".join(
                   f"{s} {r}px {k}" for s, r, k, ok in goals if not ok) + "."))
    result = {"meta": {"command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/accuracy.py"]
                                            + list(sys.argv[1:] if argv is None else argv)),
                       "machine": f"{fp.device}, {os.cpu_count()} cores visible, {platform.platform()}",
                       "fingerprint": fp.key,
                       "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                       "nnabla": nn.__version__, "nnabla_nas": getattr(nnabla_nas, "__version__", "0.15"),
                       "k": args.k, "runs": args.runs, "warmup": args.warmup, "resolutions": args.resolutions,
                       "seed": args.seed, "wall_seconds": time.time() - started, "cpus": os.cpu_count(),
                       "loadavg_min": min(loads), "loadavg_max": max(loads)},
              "combos": combos, "goal_summary": summary}
    for path in (args.json, args.markdown, args.plot):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=1)
    write_markdown(result, args.markdown)
    plot(result, args.plot)
    logger.info("%s", summary)
    logger.info("wrote %s, %s, %s in %.1f min", args.json, args.markdown, args.plot, (time.time() - started) / 60)
    return result


if __name__ == "__main__":
    main()
