"""The ``nas-hw`` command line.

    nas-hw cache ls|export|import|clear|migrate|copy|verify  the latency cache (nas_hw.app.cache_cli)
    nas-hw report NETWORK [...]                  per-layer latency/memory/FLOPs table (nas_hw.app.report)
    nas-hw sweep-report DIR [...]                the evidence of a sweep: table, plot, claims (nas_hw.app.sweep_report)
    nas-hw profile [OVERRIDE ...]                candidate table of a search space (a Hydra app)
    nas-hw search [OVERRIDE ...]                 the hardware-aware search (a Hydra app)

Every ``cache`` command takes ``--cache PATH`` (default ``$NAS_HW_CACHE`` or the per-user cache,
see :func:`nas_hw.measure.store.default_cache_path`): a file, or a ``postgresql://`` URL of a
server store (its password, if any, is never printed: give it through ``PGPASSWORD``,
``~/.pgpass`` or ``PGSERVICE``). ``profile`` and ``search`` take Hydra's
arguments (overrides, ``-m``, ``--cfg job``, ``--help``).

Exit codes: 0 success, 2 bad input (arguments, an unknown fingerprint, a malformed import file,
clearing without ``--yes``), 1 a runtime failure (an unusable cache file, an I/O error). Errors
are one line ``nas-hw: error: ...`` on stderr.
"""
import argparse
import logging
import sys

from .. import __version__
from ..errors import NasHwError, UsageError
from ..measure.store import default_cache_path, describe
from . import report, sweep_report
from .cache_cli import add_cache_commands
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


def _add_cache_option(parser):
    parser.add_argument("--cache", default=None, metavar="PATH",
                        help="latency cache file or postgresql:// URL (default: $NAS_HW_CACHE or the "
                             f"per-user cache, now {describe(default_cache_path())})")


def build_parser():
    """The ``nas-hw`` argument parser (subcommands ``cache ...`` and the registered ones)."""
    parser = _Parser(prog=PROG, description="Hardware-aware NAS tools for nnabla: latency cache "
                                            "and per-layer reports.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    add_cache_commands(commands, _add_cache_option, _Parser)

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
            raise BadInput(f"`{PROG} {args.command}` needs an action: ls, export, import, clear, migrate, copy or verify "
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
