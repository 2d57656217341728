"""Writing a :class:`~nas_hw.report.layers.NetworkReport`: text table, CSV, JSON and a bar chart."""
import csv
import json

from ..constants import TIME_UNITS
from ..errors import DependencyMissingError
from ..files import atomic_write
from .loader import _shape_str
from .numbers import binary_bytes, si

EXTRA_HINT = "pip install matplotlib (a dependency of nas_hw), or skip the chart with --no-plot"
CSV_NAME = "report.csv"
JSON_NAME = "report.json"
PNG_NAME = "report.png"


def csv_header(unit):
    """Column names of ``report.csv`` for the time unit ``unit``."""
    return ["index", "layer", "type", f"latency_{TIME_UNITS[unit]}", "share_percent", "params",
            "activation_bytes", "flops"]


def write_csv(report, path):
    """Writes the per-layer rows (full float precision; empty ``flops`` = no formula)."""
    with atomic_write(path, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(csv_header(report.unit))
        for r in report.rows:
            w.writerow([r.index, r.layer, r.type_name, repr(r.latency), repr(r.share_percent),
                        r.params, r.activation_bytes, "" if r.flops is None else r.flops])


def write_json(report, path):
    """Writes rows and totals as JSON."""
    with atomic_write(path) as fh:
        json.dump(report.to_dict(), fh, indent=1)


def require_matplotlib():
    """Imports matplotlib with the Agg backend.

    Raises:
        DependencyMissingError: matplotlib is not installed (it is a dependency of nas_hw; an
            install with ``--no-deps`` may lack it).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise DependencyMissingError(f"the PNG chart needs matplotlib, which is not installed "
                                     f"({err}): {EXTRA_HINT}") from err
    return plt


def top_rows(report, top):
    """The ``top`` slowest rows, slowest first."""
    return sorted(report.rows, key=lambda r: (-r.latency, r.index))[:top]


def write_bar_chart(report, path, top=10):
    """Writes a horizontal bar chart of the ``top`` slowest layers (PNG, matplotlib Agg)."""
    plt = require_matplotlib()
    rows = top_rows(report, top)
    labels = [f"{r.index}: {r.layer}" + (f" ({r.type_name})" if r.layer != r.type_name else "")
              for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.6))
    try:
        y = list(range(len(rows)))
        ax.barh(y, [r.latency for r in rows], color="tab:blue")
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()  # slowest on top
        for yi, r in zip(y, rows):
            ax.text(r.latency, yi, f" {r.share_percent:.1f}%", va="center", fontsize=7)
        ax.set_xlabel(f"latency ({report.unit_name}, layer-based)")
        ax.set_title(f"{report.name}: top {len(rows)} of {len(report.rows)} layers; "
                     f"sum {report.layer_latency:.4g} {report.unit_name}, "
                     f"true {report.true_latency:.4g} {report.unit_name}", fontsize=9)
        fig.tight_layout()
        with atomic_write(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=100)
    finally:
        plt.close(fig)


def format_table(report):
    """The report as text: one line per layer, then the totals; big numbers with a prefix
    (``3.64 GFLOPs``, ``21.0 KiB``, see :mod:`nas_hw.report.numbers`)."""
    u = report.unit_name
    head = ["#", "layer", "type", f"latency_{u}", "share_%", "params", "activations", "flops"]
    body = [[str(r.index), r.layer, r.type_name, f"{r.latency:.4f}", f"{r.share_percent:.1f}",
             si(r.params), binary_bytes(r.activation_bytes), "-" if r.flops is None else si(r.flops)]
            for r in report.rows]
    widths = [max(len(row[k]) for row in [head] + body) for k in range(len(head))]
    left = {1, 2}

    def line(cells):
        return "  ".join(c.ljust(w) if k in left else c.rjust(w)
                         for k, (c, w) in enumerate(zip(cells, widths))).rstrip()

    shapes = "; ".join(_shape_str(s) for s in report.input_shapes) or "none"
    ratio = (f"{report.layer_latency / report.true_latency:.2f}" if report.true_latency > 0 else "n/a")
    lines = [f"network {report.name!r} from {report.source} | input {shapes} | device "
             f"{report.ext_name}:{report.device_id} | latency unit {u}", line(head)]
    lines += [line(b) for b in body]
    flops_note = (f" (no formula for {sorted(set(report.unknown_flops))}: left out)"
                  if report.unknown_flops else "")
    lines += [
        f"layers: {len(report.rows)}",
        f"latency, layer-based estimate (sum of the rows): {report.layer_latency:.4f} {u}",
        f"latency, true (Profiler, whole network):         {report.true_latency:.4f} {u}"
        f"  (estimate / true = {ratio})",
        f"parameters: {si(report.param_count)} ({binary_bytes(report.param_bytes)} as float32)",
        f"activation memory: peak {binary_bytes(report.activation_peak_bytes)}, total "
        f"{binary_bytes(report.activation_total_bytes)} (float32)",
        f"compute: {si(report.flops, 'FLOPs')} ({si(report.macs, 'MACs')}){flops_note}",
        f"layer measurements taken: {report.measurements} (the rest came from the cache)",
    ]
    return "\n".join(lines)
