"""Turns a multirun directory of examples/search.py into a table and a Pareto plot.

    python examples/search.py -m latency.weight=0,1 seed=0,1,2
    python examples/sweep_report.py multirun/search/<date_time> --out docs/search_sweep

Reads every ``<job>/report.json`` under the directory and writes:

- ``<out>.csv``: one row per run (weight, seed, choices, estimated and measured latency,
  accuracies, parameter bytes);
- ``<out>.md``: the same rows as a markdown table, then the median over seeds per latency
  weight, with the change of each weight against the first (lowest) weight;
- ``<out>.png``: validation and test accuracy against measured latency, one colour per
  latency weight, with the Pareto front of the test accuracy.

With ``--remeasure N`` the derived network of every run is rebuilt (from the run's
``.hydra/config.yaml`` and its choices) and measured again here, all runs interleaved in
``--rounds`` rounds of ``N`` timed runs each; the median over rounds
(``remeasured_latency_ms``) replaces each run's own measurement in the medians and the plot.
Each run measured its network once, at its own time: on a shared machine the load differs
between runs, and interleaving puts every network under the same conditions.
"""
import argparse
import csv
import glob
import json
import logging
import os
import statistics
import sys

logger = logging.getLogger("sweep_report")

COLUMNS = ["latency_weight", "seed", "algorithm", "choices", "candidates",
           "estimated_latency_ms", "true_latency_ms", "remeasured_latency_ms", "param_bytes",
           "search_valid_acc", "valid_acc", "test_acc", "run"]


def load_reports(sweep_dir):
    """Every report.json under ``sweep_dir`` (any depth), sorted by weight then seed."""
    paths = sorted(glob.glob(os.path.join(sweep_dir, "**", "report.json"), recursive=True))
    if not paths:
        raise FileNotFoundError(f"no report.json under {sweep_dir!r}: is it a multirun directory "
                                "of examples/search.py?")
    rows = []
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        row = {k: report.get(k) for k in COLUMNS}
        row["run"] = os.path.relpath(os.path.dirname(path), sweep_dir)
        row["_choices"] = list(report["choices"])
        row["_input_shape"] = report.get("deploy_input_shape")
        row["_ext_name"] = report.get("ext_name", "cpu")
        row["_dir"] = os.path.dirname(path)
        row["choices"] = " ".join(str(c) for c in report["choices"])
        row["candidates"] = " ".join(report["candidates"] or [])
        rows.append(row)
    rows.sort(key=lambda r: (r["latency_weight"], r["seed"]))
    return rows


def remeasure(rows, n_run=100, rounds=5):
    """Measures every run's derived network again, interleaved; sets
    ``remeasured_latency_ms`` (median over ``rounds`` of the mean of ``n_run`` runs)."""
    import nnabla as nn
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from nas_hw.estimators.network import Profiler

    profilers = []
    for row in rows:
        cfg_path = os.path.join(row["_dir"], ".hydra", "config.yaml")
        if not os.path.isfile(cfg_path):
            raise FileNotFoundError(f"{cfg_path} is missing: cannot rebuild run {row['run']!r}")
        cfg = OmegaConf.load(cfg_path)
        shape = tuple(row["_input_shape"])
        net = instantiate(cfg.space, in_channels=shape[1], n_classes=_n_classes(cfg),
                          choices=row["_choices"], _convert_="all")
        net.apply(training=False)
        out = net(nn.Variable(shape))
        profilers.append(Profiler(out, ext_name=row["_ext_name"], n_run=n_run, n_warmup=5,
                                  per_function=False))
    samples = [[] for _ in rows]
    for r in range(rounds):
        for i, profiler in enumerate(profilers):
            samples[i].append(profiler.run()["forward_all"])
        logger.info("remeasure round %d/%d done", r + 1, rounds)
    for row, values in zip(rows, samples):
        row["remeasured_latency_ms"] = statistics.median(values)


def _n_classes(cfg):
    from nas_hw.datasets import load_dataset
    if cfg.data.name == "digits":
        return 10
    return load_dataset(cfg.data.name, root=cfg.data.root).n_classes


def latency_key(rows):
    """The latency column the summaries use: the remeasured one when present."""
    return "remeasured_latency_ms" if all(r.get("remeasured_latency_ms") for r in rows) \
        else "true_latency_ms"


def pareto_front(points):
    """Points (latency, accuracy) not beaten on both by another point, by latency."""
    front, best = [], float("-inf")
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((lat, acc))
            best = acc
    return front


def medians(rows):
    """Median of the measured latency (:func:`latency_key`) and the accuracies over seeds,
    per latency weight."""
    lat = latency_key(rows)
    out = []
    for w in sorted({r["latency_weight"] for r in rows}):
        group = [r for r in rows if r["latency_weight"] == w]

        def med(key):
            values = [r[key] for r in group if r[key] is not None]
            return statistics.median(values) if values else None

        out.append({"latency_weight": w, "n_seeds": len(group),
                    "estimated_latency_ms": med("estimated_latency_ms"),
                    "measured_latency_ms": med(lat), "latency_source": lat,
                    "valid_acc": med("valid_acc"),
                    "test_acc": med("test_acc"), "param_bytes": med("param_bytes")})
    base = out[0]
    for m in out:
        m["latency_change_pct"] = 100 * (m["measured_latency_ms"] / base["measured_latency_ms"] - 1)
        m["test_acc_change_points"] = (100 * (m["test_acc"] - base["test_acc"])
                                       if m["test_acc"] is not None and base["test_acc"] is not None
                                       else None)
    return out


def _fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def markdown(rows, summary):
    """The runs and the per-weight medians as markdown tables."""
    cols = [c for c in COLUMNS if c != "algorithm"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    scols = ["latency_weight", "n_seeds", "estimated_latency_ms", "measured_latency_ms",
             "latency_change_pct", "valid_acc", "test_acc", "test_acc_change_points",
             "param_bytes"]
    lines += ["", f"Median over seeds (measured latency = {summary[0]['latency_source']}; "
              "changes against the first weight):", "",
              "| " + " | ".join(scols) + " |", "|" + "---|" * len(scols)]
    lines += ["| " + " | ".join(_fmt(m[c]) for c in scols) + " |" for m in summary]
    return "\n".join(lines) + "\n"


def plot(rows, path):
    """Validation and test accuracy against measured latency (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat = latency_key(rows)
    weights = sorted({r["latency_weight"] for r in rows})
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, key, title in ((axes[0], "valid_acc", "validation"), (axes[1], "test_acc", "test")):
        for i, w in enumerate(weights):
            pts = [(r[lat], 100 * r[key]) for r in rows
                   if r["latency_weight"] == w and r[key] is not None]
            if pts:
                ax.scatter(*zip(*pts), color=cmap(i / max(1, len(weights) - 1)),
                           label=f"latency.weight={w:g}", s=40)
        pts = [(r[lat], 100 * r[key]) for r in rows if r[key] is not None]
        if pts:
            ax.plot(*zip(*pareto_front(pts)), color="grey", linestyle="--", linewidth=1,
                    label="Pareto front")
        ax.set_title(f"retrained {title} accuracy")
        ax.set_xlabel("measured latency of the derived network (ms)")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"latency: {lat}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="multirun directory of examples/search.py")
    parser.add_argument("--out", default=None,
                        help="output path without extension (default: <sweep_dir>/sweep)")
    parser.add_argument("--remeasure", type=int, default=0, metavar="N",
                        help="measure every derived network again here, N timed runs per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of --remeasure")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = load_reports(args.sweep_dir)
    if args.remeasure:
        remeasure(rows, n_run=args.remeasure, rounds=args.rounds)
    out = args.out or os.path.join(args.sweep_dir, "sweep")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    summary = medians(rows)
    with open(out + ".md", "w") as f:
        f.write(markdown(rows, summary))
    plot(rows, out + ".png")
    for m in summary:
        logger.info("weight %g: median measured latency %.4f ms (%+.1f%%), test acc %s",
                    m["latency_weight"], m["measured_latency_ms"], m["latency_change_pct"],
                    _fmt(m["test_acc"]))
    logger.info("wrote %s.csv, %s.md, %s.png (%d runs)", out, out, out, len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
