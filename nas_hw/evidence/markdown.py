"""The sweep report as one markdown document, generated whole: how the runs were made (commands,
seeds, dates, wall time, load), how latency was measured, then per task the claims
(:mod:`nas_hw.evidence.claims`), the medians with intervals, the comparisons and every run."""
import datetime
import os

import numpy as np

from .claims import ci, claims, pct
from .runs import run_config


def _fmt(value, spec=".4f"):
    return "-" if value is None else format(value, spec)


def _table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _acc(entry):
    if entry is None:
        return "-"
    return f"{100 * entry['median']:.2f} [{100 * entry['ci'][0]:.2f}, {100 * entry['ci'][1]:.2f}]"


def _lat(entry):
    return f"{entry['median']:.4f} [{entry['ci'][0]:.4f}, {entry['ci'][1]:.4f}]"


def _span(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{lo:g}" if lo == hi else f"{lo:g} to {hi:g}"


def provenance(runs, commands, meta):
    """The "how it was made" section."""
    lines = ["## How the runs were made", ""]
    lines += ["Commands (from each multirun's `multirun.yaml`), with their runs, seeds, run time and the "
              "1-minute load average at each run's end:", ""]
    rows = []
    for c in commands:
        mine = [r for r in runs if os.path.realpath(r.run_dir).startswith(os.path.realpath(c["dir"]) + os.sep)]
        if not mine:
            continue
        cpu = sum(r.get("total_time_s") or 0 for r in mine)
        rows.append([f"`{c['command']}`", len(mine), _span([r.seed for r in mine]),
                     f"{cpu / 60:.1f} min", _wall(mine), _span([r.get("load_avg_1min") for r in mine])])
    lines += _table(["command", "runs", "seeds", "sum of run times", "first start to last end (UTC)",
                     "load at run ends"], rows)
    orphans = [r for r in runs if not any(os.path.realpath(r.run_dir).startswith(os.path.realpath(c["dir"]) + os.sep)
                                          for c in commands)]
    if orphans:
        lines += ["", f"{len(orphans)} run(s) lie outside any `multirun.yaml` (single runs): "
                  + ", ".join(f"`{r.name}`" for r in orphans) + "."]
    commit = f" (git {meta['commit']})" if meta.get("commit") else ""
    lines += ["", f"Report: `{meta['command']}` on {meta['date']} ({meta['wall_s']:.0f} s), nas_hw {meta['version']}{commit}, "
              f"nnabla {meta['nnabla']}, Python {meta['python']}, {meta['cpus']} CPU(s); device of the candidate "
              f"tables: `{_span_text([r.get('table_fingerprint') for r in runs])}`."]
    rm = meta.get("remeasure")
    if rm:
        spreads = [s for s in rm["spread"].values() if s is not None]
        lines += ["", f"Latency: the {rm['n_networks']} distinct derived networks of these runs were re-timed in the "
                  f"report step on {rm['date']}: {rm['rounds']} rounds, each timing every network once "
                  f"({rm['n_run']} forwards after {rm['n_warmup']} warm-up, whole-graph `Profiler`, batch as "
                  f"deployed) in a fresh random order; a network's latency is the median over rounds. "
                  f"Interquartile range over rounds / median: median {np.median(spreads):.1%}, "
                  f"largest {max(spreads):.1%}. 1-minute load average before the first round and after each: "
                  f"{', '.join(f'{v:g}' for v in rm['load_avg'])}; {rm['wall_s']:.0f} s in all."]
    else:
        lines += ["", "Latency: not re-measured in the report step (`--remeasure 0`): see each task's latency "
                  "source."]
    return lines


def _wall(runs):
    """First start to last end of ``runs`` (each started ``total_time_s`` before it finished)."""
    fmt = "%Y-%m-%d %H:%M UTC"
    try:
        ends = [datetime.datetime.strptime(r.get("finished_utc"), fmt) for r in runs]
    except (TypeError, ValueError):
        return "-"
    starts = [e - datetime.timedelta(seconds=r.get("total_time_s") or 0) for e, r in zip(ends, runs)]
    first, last = min(starts), max(ends)
    return f"{first:%Y-%m-%d %H:%M} to {last:%H:%M} ({(last - first).total_seconds() / 60:.0f} min)"


def method_configs(runs):
    """What the runs of a task were configured with (each method's first run's
    ``.hydra/config.yaml``): the data, the space, the retraining and each method's search node."""
    out, seen = [], set()
    for r in runs:
        cfg = run_config(r.run_dir)
        if r.method in seen or not cfg:
            continue
        seen.add(r.method)
        for g in (["data", "space", "retrain"] if not out else []) + ["search"]:
            node = cfg.get(g)
            if isinstance(node, dict):
                text = ", ".join(f"{k}={v}" for k, v in node.items() if not str(k).startswith("_"))
                label = g if g != "search" else f"search ({r.method}, {str(node.get('_target_', '')).rsplit('.', 1)[-1]})"
                out.append(f"- {label}: {text}")
    return out


def _span_text(values):
    values = sorted({str(v) for v in values if v})
    return "; ".join(values) if values else "-"


def settings_table(task):
    rows = []
    for setting, e in task["settings"].items():
        rows.append([f"`{setting}`", e["n"], _span(e["seeds"]), _lat(e["latency_ms"]), _acc(e["test_acc"]),
                     _acc(e["valid_acc"]), f"{e['param_bytes']:.0f}"])
    level = pct(task["level"])
    return [f"Medians over seeds with {level} bootstrap intervals (random: over every draw of every seed):", ""] + \
        _table(["setting", "runs", "seeds", f"latency ms [{level} CI]", f"test acc % [{level} CI]",
                f"valid acc % [{level} CI]", "param bytes"], rows)


def changes_table(task):
    if not task["changes"]:
        return []
    rows = [[f"`{c['setting']}`", f"`{c['reference']}`", len(c["seeds"]),
             f"{c['latency_change_pct']['value']:+.1f} {ci(c['latency_change_pct']['ci'])}",
             f"{c['acc_change_pt']['value']:+.2f} {ci(c['acc_change_pt']['ci'], '+.2f')}",
             "yes" if c["goal_point"] else "no", "yes" if c["goal_ci"] else "no"] for c in task["changes"]]
    return ["Against weight 0 (paired by seed):", ""] + _table(
        ["setting", "against", "seeds", "latency change % [CI]", "test acc change pt [CI]",
         "goal (point)", "goal (CIs)"], rows)


def pairs_table(task):
    rnd = task["random"]
    if rnd is None or not rnd["pairs"]:
        return []
    rows = [[f"`{p['setting']}`", p["seed"], f"{p['budget_ms']:.4f}", f"{100 * p['search_test_acc']:.2f}",
             f"`{p['random_run']}`", f"{p['random_latency_ms']:.4f}", _fmt(p["random_valid_acc"] and 100 * p["random_valid_acc"], ".2f"),
             f"{100 * p['random_test_acc']:.2f}", f"{100 * p['diff']:+.2f}"] for p in rnd["pairs"]]
    return ["Search against the random-search pick at its latency (one row per search run):", ""] + _table(
        ["search", "seed", "its latency ms", "its test acc %", "random pick", "pick latency ms", "pick valid acc %",
         "pick test acc %", "difference pt"], rows)


def runs_table(runs, source):
    rows = []
    for r in runs:
        rows.append([f"`{r.name}`", r.method, f"`{r.setting}`", r.seed, " ".join(r.get("candidates") or [])
                     or " ".join(map(str, r.get("choices"))), _fmt(r.get("estimated_latency_ms")),
                     _fmt(r.get("true_latency_ms")), _fmt(r.remeasured_latency_ms),
                     _fmt(r.valid_acc and 100 * r.valid_acc, ".2f"), _fmt(r.test_acc and 100 * r.test_acc, ".2f")])
    return [f"Every run (the claims use `{source}`):", ""] + _table(
        ["run", "method", "setting", "seed", "architecture", "estimated ms", "own measured ms", "re-measured ms",
         "valid acc %", "test acc %"], rows)


def document(runs, analysis, commands, meta, plot_name=None):
    """The whole markdown document.

    Args:
        runs: the :class:`~nas_hw.evidence.runs.Run` records (remeasured when it was asked).
        analysis: :func:`nas_hw.evidence.analysis.analyse`'s result.
        commands: :func:`nas_hw.evidence.runs.sweep_commands`'s result.
        meta: ``command``, ``date``, ``wall_s``, ``version``, ``nnabla``, ``python``, ``cpus`` and
            ``remeasure`` (the re-measurement's record, or ``None``).
        plot_name: the plot's file name beside the document, or ``None``.
    """
    lines = ["# Sweep report: latency-aware search, random search and the uniform family", "",
             f"Generated by `nas-hw sweep-report` on {meta['date']} from {len(runs)} runs; every number and "
             "every sentence below is computed from the runs (do not edit by hand: re-run the command below).", ""]
    lines += provenance(runs, commands, meta)
    if plot_name:
        lines += ["", f"![test accuracy against latency]({plot_name})", "",
                  "The plot: every retrained architecture, test accuracy against latency; colour = method "
                  "(searches by latency weight), marker = seed; points at the same coordinates are spread "
                  "sideways and labelled with their count; large outlined markers with bars = medians with "
                  "their intervals; the step line = random search's pick at each latency budget (median over "
                  "seeds)."]
    for task, a in analysis.items():
        mine = [r for r in runs if r.task == task]
        lines += ["", f"## Task: {task}", ""]
        config = method_configs(mine)
        if config:
            lines += ["Configuration of the runs (each method's first run, `.hydra/config.yaml`):", ""] + config + [""]
        lines += claims(a, task.split(" / ")[0])
        lines += [""] + settings_table(a)
        table = changes_table(a)
        if table:
            lines += [""] + table
        table = pairs_table(a)
        if table:
            lines += [""] + table
        lines += [""] + runs_table(mine, a["source"])
        if a["excluded"]:
            lines += ["", f"Left out (no retrained test accuracy): {', '.join(a['excluded'])}."]
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ["task", "method", "setting", "seed", "latency_weight", "candidate", "choices", "candidates",
               "estimated_latency_ms", "true_latency_ms", "remeasured_latency_ms", "param_bytes", "flops",
               "search_valid_acc", "valid_acc", "test_acc", "total_time_s", "finished_utc", "run"]


def csv_rows(runs):
    """One dict per run, :data:`CSV_COLUMNS` keys."""
    out = []
    for r in runs:
        out.append({"task": r.task, "method": r.method, "setting": r.setting, "seed": r.seed,
                    "latency_weight": r.weight, "candidate": r.candidate,
                    "choices": " ".join(map(str, r.get("choices"))),
                    "candidates": " ".join(r.get("candidates") or []),
                    "estimated_latency_ms": r.get("estimated_latency_ms"), "true_latency_ms": r.get("true_latency_ms"),
                    "remeasured_latency_ms": r.remeasured_latency_ms, "param_bytes": r.get("param_bytes"),
                    "flops": r.get("flops"), "search_valid_acc": r.get("search_valid_acc"), "valid_acc": r.valid_acc,
                    "test_acc": r.test_acc, "total_time_s": r.get("total_time_s"),
                    "finished_utc": r.get("finished_utc"), "run": r.name})
    return out
