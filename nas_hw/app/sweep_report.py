"""``nas-hw sweep-report``: the evidence of a sweep, generated from its runs.

    nas-hw sweep-report multirun/search/<search> multirun/search/<random> multirun/search/<uniform> \
        --out docs/search_sweep --remeasure 100 --rounds 7

Reads every ``report.json`` under the given multirun directories (searches at several
``latency.weight`` values, ``search=random`` and ``search=uniform`` baselines; any space), times
every distinct derived network again side by side, interleaved (``--remeasure N``: N forwards
per network per round, ``--rounds`` rounds; ``--remeasure 0`` keeps the runs' own latencies),
and writes:

* ``<out>.md``: the whole document: commands, seeds, dates, load, how latency was measured,
  the claims with their intervals and the stated test, the medians, every run;
* ``<out>.csv``: one row per run; ``<out>.json``: every computed number;
* ``<out>.png``: the Pareto plot of every method (``--no-plot`` skips it).

Exit codes: 0 success, 2 bad input (a directory without runs, a bad option), 1 a failure while
measuring or writing.
"""
import csv
import datetime
import json
import logging
import os
import platform
import shlex
import sys
import time

from .. import __version__
from ..errors import NasHwError, UsageError
from ..files import atomic_write
from ..evidence import analyse, load_runs, sweep_commands
from ..evidence.markdown import CSV_COLUMNS, csv_rows, document
from ..evidence.stats import N_BOOT
from .entry import PROG, fail

logger = logging.getLogger(__name__)


def add_arguments(parser):
    """Fills an argparse (sub)parser with the ``sweep-report`` arguments."""
    parser.add_argument("sweep_dirs", nargs="+", metavar="DIR",
                        help="multirun directories of `nas-hw search -m ...` (every report.json under them)")
    parser.add_argument("--out", default=None, metavar="PREFIX",
                        help="output path without extension (default: <first DIR>/sweep)")
    parser.add_argument("--remeasure", type=int, default=100, metavar="N",
                        help="re-time every derived network here, N forwards per round (default 100; "
                             "0: use the runs' own latencies)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of --remeasure (default 7)")
    parser.add_argument("--n-warmup", type=int, default=5, help="untimed forwards before each timing (default 5)")
    parser.add_argument("--n-boot", type=int, default=N_BOOT, help=f"bootstrap resamples (default {N_BOOT})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the round order (default 0)")
    parser.add_argument("--no-plot", dest="plot", action="store_false", help="do not draw <out>.png")


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def _git_commit():
    """The commit of the nas_hw checkout this runs from (``None`` for an installed wheel)."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        done = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _meta(argv, started, remeasured):
    import nnabla

    return {"command": " ".join(shlex.quote(a) for a in [PROG, "sweep-report"] + list(argv)),
            "commit": _git_commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_s": time.perf_counter() - started, "version": __version__, "nnabla": nnabla.__version__,
            "python": platform.python_version(), "cpus": os.cpu_count(), "remeasure": remeasured}


def make_report(args, argv=()):
    """Reads, (re-)measures, analyses and writes; returns the analysis."""
    started = time.perf_counter()
    for name in ("remeasure", "n_boot", "seed"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.rounds < 1 or args.n_warmup < 0 or args.n_boot < 100:
        raise UsageError(f"--rounds must be >= 1, --n-warmup >= 0 and --n-boot >= 100, got {args.rounds}, "
                         f"{args.n_warmup}, {args.n_boot}")
    out = args.out or os.path.join(args.sweep_dirs[0], "sweep")
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise UsageError(f"--out {out!r}: directory {directory!r} does not exist")
    runs = load_runs(args.sweep_dirs)
    commands = sweep_commands(args.sweep_dirs)
    remeasured = None
    if args.remeasure:
        from ..evidence.remeasure import remeasure

        remeasured = remeasure(runs, n_run=args.remeasure, rounds=args.rounds, n_warmup=args.n_warmup,
                               seed=args.seed)
    analysis = analyse(runs, n_boot=args.n_boot, seed=args.seed)
    if not analysis:
        raise UsageError("no run under the given directories has a retrained test accuracy (retrain=none?)")
    plot_name = None
    if args.plot:
        from ..evidence.plot import plot

        plot(runs, analysis, out + ".png")
        plot_name = os.path.basename(out) + ".png"
    meta = _meta(argv, started, remeasured)
    with atomic_write(out + ".md") as f:
        f.write(document(runs, analysis, commands, meta, plot_name))
    with atomic_write(out + ".csv", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(runs))
    with atomic_write(out + ".json") as f:
        json.dump(_json_ready({"meta": meta, "commands": commands, "analysis": analysis}), f, indent=1)
    logger.info("wrote %s.md, .csv, .json%s (%d runs)", out, ", .png" if plot_name else "", len(runs))
    return analysis


def run(args, argv=()):
    """Runs ``nas-hw sweep-report`` with parsed ``args``; returns the exit code."""
    try:
        make_report(args, argv)
    except UsageError as err:
        return fail(err, 2)
    except (NasHwError, OSError) as err:
        return fail(err, 1)
    return 0


def main(argv=None):
    """``nas-hw sweep-report ...`` on its own (also ``python -m nas_hw.app.sweep_report``)."""
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=f"{PROG} sweep-report", description=__doc__.split("\n")[0])
    add_arguments(parser)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run(parser.parse_args(argv), argv)


if __name__ == "__main__":
    sys.exit(main())
