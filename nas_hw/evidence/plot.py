"""The sweep's Pareto plot: every retrained architecture of every method, test accuracy against
latency, one panel per task.

Colour = method (the searches by latency weight on one colour map, random search grey, the
uniform family orange); marker = seed. Points at the same coordinates (the same network with
the same test accuracy: common, since accuracies are counts of test images) are spread sideways
by a fixed step and labelled with their count, so none hides another. Large outlined markers
with error bars are the medians over seeds with their bootstrap intervals; the step line is the
random-search pick at each latency budget (median over seeds).
"""
import numpy as np

from ..files import atomic_write
from .analysis import latency_ms, random_front
from .runs import RANDOM, SEARCH, UNIFORM

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p"]
RANDOM_COLOUR = "#8c8c8c"
UNIFORM_COLOUR = "#e6740b"
#: Sideways step between points at the same coordinates, as a share of the x range.
JITTER_STEP = 0.008


def spread_identical(points, step):
    """Offsets along x that separate points at identical (x, y): the k points of a group are
    placed at ``(i - (k - 1) / 2) * step``; returns the offsets and each group's size."""
    groups = {}
    for i, (x, y) in enumerate(points):
        groups.setdefault((round(x, 9), round(y, 9)), []).append(i)
    offsets, sizes = np.zeros(len(points)), np.ones(len(points), dtype=int)
    for members in groups.values():
        k = len(members)
        for j, i in enumerate(members):
            offsets[i] = (j - (k - 1) / 2) * step
            sizes[i] = k
    return offsets, sizes


def _colour(run, weights, cmap):
    if run.method == RANDOM:
        return RANDOM_COLOUR
    if run.method == UNIFORM:
        return UNIFORM_COLOUR
    i = weights.index(run.weight)
    return cmap(0.15 + 0.7 * i / max(1, len(weights) - 1))


def plot(runs, analysis, path):
    """Writes the plot (PNG) to ``path``; one panel per task of ``analysis``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    tasks = list(analysis)
    fig, axes = plt.subplots(len(tasks), 1, figsize=(10, 5.5 * len(tasks)), squeeze=False)
    cmap = plt.get_cmap("viridis")
    seeds = sorted({r.seed for r in runs})
    marker = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(seeds)}
    for ax, task in zip(axes[:, 0], tasks):
        a = analysis[task]
        source = a["source"]
        mine = [r for r in runs if r.task == task]
        weights = sorted({r.weight for r in mine if r.method == SEARCH})
        xs = np.array([latency_ms(r, source) for r in mine])
        ys = np.array([100 * r.test_acc for r in mine])
        span = float(xs.max() - xs.min()) or float(xs.max()) or 1.0
        offsets, sizes = spread_identical(list(zip(xs, ys)), JITTER_STEP * span)
        for r, x, y, dx, k in zip(mine, xs, ys, offsets, sizes):
            ax.scatter(x + dx, y, color=_colour(r, weights, cmap), marker=marker[r.seed], s=34,
                       alpha=0.55 if r.method == RANDOM else 0.9, edgecolor="black" if r.method == SEARCH else "none",
                       linewidth=0.4, zorder=3 if r.method == SEARCH else 2)
        labelled = set()
        for x, y, k in zip(xs, ys, sizes):
            if k > 1 and (round(x, 9), round(y, 9)) not in labelled:
                labelled.add((round(x, 9), round(y, 9)))
                ax.annotate(f"x{k}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7)
        random_runs = [r for r in mine if r.method == RANDOM]
        if random_runs:
            budgets = np.sort(np.unique([latency_ms(r, source) for r in random_runs]))
            front = random_front(random_runs, source, budgets)
            pts = [(b, 100 * f) for b, f in zip(budgets, front) if f is not None]
            if pts:
                bx, by = zip(*pts)
                ax.step(bx + (xs.max(),), by + (by[-1],), where="post", color=RANDOM_COLOUR, linewidth=1.2,
                        label="random search: pick at each latency budget (median over seeds)")
        for setting, e in a["settings"].items():
            if e["method"] == RANDOM:
                continue
            colour = UNIFORM_COLOUR if e["method"] == UNIFORM else cmap(
                0.15 + 0.7 * weights.index(e["weight"]) / max(1, len(weights) - 1))
            lat, acc = e["latency_ms"], e["test_acc"]
            ax.errorbar(lat["median"], 100 * acc["median"],
                        xerr=[[lat["median"] - lat["ci"][0]], [lat["ci"][1] - lat["median"]]],
                        yerr=[[100 * (acc["median"] - acc["ci"][0])], [100 * (acc["ci"][1] - acc["median"])]],
                        fmt="o", ms=11, mfc="none", mec=colour, ecolor=colour, mew=2, capsize=3, zorder=4)
            if e["method"] == UNIFORM:
                ax.annotate(str(e["candidate"]), (lat["median"], 100 * acc["median"]), textcoords="offset points",
                            xytext=(6, -12), fontsize=7, color=UNIFORM_COLOUR)
        family = sorted((e["latency_ms"]["median"], 100 * e["test_acc"]["median"])
                        for e in a["settings"].values() if e["method"] == UNIFORM)
        if len(family) > 1:
            ax.plot(*zip(*family), color=UNIFORM_COLOUR, linestyle="--", linewidth=1, zorder=1)
        handles = [Line2D([], [], color=cmap(0.15 + 0.7 * i / max(1, len(weights) - 1)), marker="o", linestyle="",
                          markeredgecolor="black", label=f"search, latency.weight={w:g}" if w else
                          "search, latency=none (weight 0)") for i, w in enumerate(weights)]
        if random_runs:
            handles.append(Line2D([], [], color=RANDOM_COLOUR, marker="o", linestyle="", label="random architecture"))
        if any(r.method == UNIFORM for r in mine):
            handles.append(Line2D([], [], color=UNIFORM_COLOUR, marker="o", linestyle="--", linewidth=1,
                                  label="uniform family (same op in every block), medians joined"))
        handles += [Line2D([], [], color="black", marker=marker[s], linestyle="", label=f"seed {s}")
                    for s in sorted({r.seed for r in mine})]
        handles += [Line2D([], [], color="grey", marker="o", ms=10, mfc="none", linestyle="",
                           label=f"median over seeds, {a['level']:.0%} bootstrap CI")]
        if random_runs:
            handles.append(Line2D([], [], color=RANDOM_COLOUR, linewidth=1.2, label="random search pick at budget"))
        ax.legend(handles=handles, fontsize=7, loc="lower right", ncol=2)
        ax.set_title(f"{task}: retrained test accuracy against latency", fontsize=10)
        ax.set_xlabel(f"latency of the derived network (ms; {source})")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
