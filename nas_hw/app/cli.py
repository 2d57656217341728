"""The ``nas-hw`` command line.

    nas-hw cache ls                            one line per device fingerprint: rows, sum of mean ms, dates
    nas-hw cache export FILE [--fingerprint FP]  rows to FILE (.csv or .json)
    nas-hw cache import FILE [--overwrite]       merge an export (rows keep their fingerprint)
    nas-hw cache clear [--fingerprint FP] --yes  delete rows (refused without --yes)
    nas-hw report NETWORK [...]                  per-layer latency/memory/FLOPs table (nas_hw.app.report)
    nas-hw sweep-report DIR [...]                the evidence of a sweep: table, plot, claims (nas_hw.app.sweep_report)
    nas-hw profile [OVERRIDE ...]                candidate table of a search space (a Hydra app)
    nas-hw search [OVERRIDE ...]                 the hardware-aware search (a Hydra app)

Every ``cache`` command takes ``--cache PATH`` (default ``$NAS_HW_CACHE`` or the per-user cache,
see :func:`nas_hw.measure.store.default_cache_path`). ``profile`` and ``search`` take Hydra's
arguments (overrides, ``-m``, ``--cfg job``, ``--help``).

Exit codes: 0 success, 2 bad input (arguments, an unknown fingerprint, a malformed import file,
clearing without ``--yes``), 1 a runtime failure (an unusable cache file, an I/O error). Errors
are one line ``nas-hw: error: ...`` on stderr.
"""
import argparse
import datetime
import logging
import os
import sys

from .. import __version__
from ..errors import CacheError, NasHwError, UsageError
from ..measure.store import LatencyCache, default_cache_path
from . import report, sweep_report
from .entry import PROG, fail

logger = logging.getLogger(__name__)

#: Hydra apps: ``nas-hw <name> ...`` hands the rest of the command line to Hydra.
HYDRA_COMMANDS = {
    "search": ("nas_hw.app.search", "the hardware-aware search (Hydra overrides, -m, --cfg, --help)"),
    "profile": ("nas_hw.app.profile", "build and store the candidate table of a configured search space"),
}
BadInput = UsageError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as an exception instead of exiting, so :func:`main`
    prints it as one line and returns 2 (and can be called from tests)."""

    def error(self, message):
        raise BadInput(f"{message} (see `{self.prog} --help`)")


def _date(epoch_s):
    if epoch_s is None:
        return "-"
    return datetime.datetime.fromtimestamp(float(epoch_s), tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _open_existing(path):
    """The cache at ``path``, or ``None`` when no file is there yet (nothing was measured)."""
    if path != ":memory:" and not os.path.exists(path):
        return None
    return LatencyCache(path)


def _known_fingerprints(cache):
    return [s["fingerprint"] for s in cache.summary()]


def _check_fingerprint(cache, fingerprint):
    if fingerprint is not None and fingerprint not in _known_fingerprints(cache):
        raise BadInput(f"fingerprint {fingerprint!r} has no rows in {cache.path!r}; "
                       f"known fingerprints: {_known_fingerprints(cache)}")


def _cache_ls(args, out):
    cache = _open_existing(args.cache)
    if cache is None:
        out.write(f"cache {args.cache}: no file yet (nothing measured)\n")
        return 0
    with cache:
        summary = cache.summary()
    out.write(f"cache {args.cache}: {sum(s['rows'] for s in summary)} row(s), "
              f"{len(summary)} fingerprint(s)\n")
    if summary:
        header = ("rows", "sum_mean_ms", "first", "last", "fingerprint")
        lines = [(str(s["rows"]), f"{s['sum_mean_ms']:.3f}", _date(s["first"]), _date(s["last"]),
                  s["fingerprint"]) for s in summary]
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        for row in [header] + lines:
            cells = [c.rjust(w) if i < 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
            out.write("  ".join(cells).rstrip() + "\n")
    return 0


def _cache_export(args, out):
    if os.path.splitext(args.file)[1].lower() not in (".csv", ".json"):
        raise BadInput(f"export file must end in .csv or .json (the format), got {args.file!r}")
    directory = os.path.dirname(os.path.abspath(args.file))
    if not os.path.isdir(directory):
        raise BadInput(f"cannot export to {args.file!r}: directory {directory!r} does not exist")
    cache = _open_existing(args.cache)
    if cache is None:
        raise BadInput(f"no cache file at {args.cache!r}: nothing to export")
    with cache:
        _check_fingerprint(cache, args.fingerprint)
        n = cache.export(args.file, fingerprint=args.fingerprint)
    out.write(f"exported {n} row(s) to {args.file}\n")
    return 0


def _cache_import(args, out):
    if not os.path.isfile(args.file):
        raise BadInput(f"import file {args.file!r} does not exist")
    if os.path.splitext(args.file)[1].lower() not in (".csv", ".json"):
        raise BadInput(f"import file must be a .csv or .json export, got {args.file!r}")
    if args.cache == default_cache_path() and args.cache != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(args.cache)), exist_ok=True)  # first use
    with LatencyCache(args.cache) as cache:
        before = len(cache)
        try:
            n = cache.import_(args.file, overwrite=args.overwrite)
        except CacheError as err:  # the file, not the cache, is at fault
            raise BadInput(str(err)) from err
        after = len(cache)
    verb = "added or replaced" if args.overwrite else "added"
    out.write(f"imported {args.file}: {n} row(s) {verb}, cache {args.cache} now holds {after} row(s) "
              f"(was {before})\n")
    return 0


def _cache_clear(args, out):
    cache = _open_existing(args.cache)
    if cache is None:
        out.write(f"cache {args.cache}: no file, nothing to clear\n")
        return 0
    with cache:
        _check_fingerprint(cache, args.fingerprint)
        what = "all rows" if args.fingerprint is None else f"the rows of fingerprint {args.fingerprint!r}"
        if not args.yes:
            n = len(cache.records(args.fingerprint))
            raise BadInput(f"refusing to delete {what} ({n} row(s)) of {args.cache!r} without --yes")
        n = cache.clear(args.fingerprint)
    out.write(f"deleted {n} row(s) ({what}) from {args.cache}\n")
    return 0


def _add_cache_option(parser):
    parser.add_argument("--cache", default=None, metavar="PATH",
                        help="latency cache file (default: $NAS_HW_CACHE or the per-user cache, "
                             f"now {default_cache_path()})")


def build_parser():
    """The ``nas-hw`` argument parser (subcommands ``cache ...`` and the registered ones)."""
    parser = _Parser(prog=PROG, description="Hardware-aware NAS tools for nnabla: latency cache "
                                            "and per-layer reports.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    cache = commands.add_parser("cache", help="inspect, export, import or clear the latency cache")
    cache_cmds = cache.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=_Parser)
    p = cache_cmds.add_parser("ls", help="one line per device fingerprint: rows, sum of mean ms, dates")
    _add_cache_option(p)
    p.set_defaults(handler=_cache_ls)
    p = cache_cmds.add_parser("export", help="write rows to FILE (.csv or .json)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--fingerprint", default=None, metavar="FP", help="only this fingerprint's rows")
    _add_cache_option(p)
    p.set_defaults(handler=_cache_export)
    p = cache_cmds.add_parser("import", help="merge rows from an export (rows keep their fingerprint)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--overwrite", action="store_true", help="replace rows already present (default: keep them)")
    _add_cache_option(p)
    p.set_defaults(handler=_cache_import)
    p = cache_cmds.add_parser("clear", help="delete rows (all, or one fingerprint's); needs --yes")
    p.add_argument("--fingerprint", default=None, metavar="FP", help="only this fingerprint's rows")
    p.add_argument("--yes", action="store_true", help="really delete")
    _add_cache_option(p)
    p.set_defaults(handler=_cache_clear)

    sub = commands.add_parser("report", help="per-layer latency, memory and FLOPs of one network, "
                                             "and its true latency")
    report.add_arguments(sub)
    sub.set_defaults(external=report.run)
    sub = commands.add_parser("sweep-report", help="the table, plot and claims of a sweep (searches and "
                                                   "baselines), generated from its multirun directories")
    sweep_report.add_arguments(sub)
    sub.set_defaults(external=sweep_report.run)
    for name, (_, help_text) in HYDRA_COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv=None):
    """Entry point of ``nas-hw``; returns the exit code (0, 1 runtime failure, 2 bad input)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = sys.stdout
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in HYDRA_COMMANDS:
        import importlib

        return importlib.import_module(HYDRA_COMMANDS[argv[0]][0]).main(argv[1:])
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if getattr(args, "external", None) is not None:
            if args.command == "sweep-report":  # the document records its own command line
                return int(args.external(args, argv[1:]))
            return int(args.external(args))
        if args.command is None:
            raise BadInput(f"a command is required: cache, report, sweep-report, {', '.join(HYDRA_COMMANDS)} "
                           f"(see `{PROG} --help`)")
        if getattr(args, "handler", None) is None:
            raise BadInput(f"`{PROG} {args.command}` needs an action: ls, export, import or clear "
                           f"(see `{PROG} {args.command} --help`)")
        if args.cache is None:
            args.cache = default_cache_path()
        return args.handler(args, out)
    except SystemExit as exit_:  # --help / --version
        return exit_.code if isinstance(exit_.code, int) else 0
    except BadInput as err:
        return fail(err, 2)
    except (NasHwError, OSError) as err:
        return fail(err, 1)


if __name__ == "__main__":
    sys.exit(main())
