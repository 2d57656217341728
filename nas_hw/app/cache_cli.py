"""``nas-hw cache ...``: inspect, export, import, clear and migrate the latency cache.

    nas-hw cache ls [--rows [--disturbed]] [--fingerprint FP]   quality per fingerprint, or the rows
    nas-hw cache export FILE [--fingerprint FP]                   rows to FILE (.csv or .json)
    nas-hw cache import FILE [--overwrite]                        merge an export (rows keep their fingerprint)
    nas-hw cache clear [--fingerprint FP [--signature SIG]] --yes delete rows (refused without --yes)
    nas-hw cache migrate [OLD] [NEW]                              a schema-1 cache to schema 2

``ls`` and ``export`` open the cache read-only (SQLite's read-only mode): they never write to it.
"""
import datetime
import os

from ..errors import CacheError, UsageError
from ..measure.store import LatencyCache, default_cache_path
from ..measure.store.migrate import migrate_in_place, migrate_to
from ..measure.store.sqlite import SCHEMA_VERSION, migrate_hint

BadInput = UsageError


def _date(epoch_s):
    if epoch_s is None:
        return "-"
    return datetime.datetime.fromtimestamp(float(epoch_s), tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(v, fmt):
    return "-" if v is None else format(v, fmt)


def _columns(out, header, lines, n_right):
    """Writes plain aligned columns: the first ``n_right`` right-aligned, the rest left-aligned."""
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    for row in [header] + lines:
        cells = [c.rjust(w) if i < n_right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        out.write("  ".join(cells).rstrip() + "\n")


def _open_existing(path, readonly):
    """The cache at ``path``, or ``None`` when no file is there yet (nothing was measured)."""
    if path != ":memory:" and not os.path.exists(path):
        return None
    return LatencyCache(path, readonly=readonly)


def _known_fingerprints(cache):
    return sorted({r.fingerprint for r in cache.records()})


def _check_fingerprint(cache, fingerprint):
    if fingerprint is not None and fingerprint not in _known_fingerprints(cache):
        raise BadInput(f"fingerprint {fingerprint!r} has no rows in {cache.path!r}; "
                       f"known fingerprints: {_known_fingerprints(cache)}")


def _ls(args, out):
    cache = _open_existing(args.cache, readonly=True)
    if cache is None:
        out.write(f"cache {args.cache}: no file yet (nothing measured)\n")
        return 0
    with cache:
        _check_fingerprint(cache, args.fingerprint)
        summary = [s for s in cache.summary() if args.fingerprint in (None, s["fingerprint"])]
        rows = cache.records(args.fingerprint, disturbed=True if args.disturbed else None) if args.rows else []
        schema = cache.schema
    out.write(f"cache {args.cache}: {sum(s['rows'] for s in summary)} row(s), {len(summary)} fingerprint(s), "
              f"schema {schema}\n")
    if schema != SCHEMA_VERSION:
        out.write(f"note: {migrate_hint(args.cache)}\n")
    if args.rows:
        _ls_rows(rows, out)
    elif summary:
        header = ("rows", "disturbed", "unknown", "spread_med", "load1", "sum_mean_ms", "first", "last", "fingerprint")
        lines = [(str(s["rows"]), str(s["disturbed"]), str(s["unknown"]), _num(s["spread_median"], ".3f"),
                  "-" if s["load_min"] is None else f"{s['load_min']:.2f}-{s['load_max']:.2f}",
                  f"{s['sum_mean_ms']:.3f}", _date(s["first"]), _date(s["last"]), s["fingerprint"])
                 for s in summary]
        _columns(out, header, lines, 6)
    return 0


def _ls_rows(rows, out):
    """One line per row (grouped by fingerprint): the served value and what judges it."""
    verdict = {None: "?", True: "yes", False: "no"}
    fingerprint = None
    header = ("value_ms", "median_ms", "mean_ms", "spread", "rounds", "load1", "peers", "disturbed", "created",
              "signature")
    lines = []
    for r in rows:
        if r.fingerprint != fingerprint:
            if lines:
                _columns(out, header, lines, 7)
            out.write(f"fingerprint {r.fingerprint}:\n")
            fingerprint, lines = r.fingerprint, []
        s = r.stats
        lines.append((_num(None if s.value is None else s.value * 1e3, ".4f"), f"{s.median * 1e3:.4f}",
                      f"{s.mean * 1e3:.4f}", _num(s.spread, ".3f"), str(s.n_rounds), _num(s.load1, ".2f"),
                      _num(s.peers, "d"), verdict[s.disturbed], _date(r.created), r.signature))
    if lines:
        _columns(out, header, lines, 7)
    if not rows:
        out.write("no rows\n")


def _export(args, out):
    if os.path.splitext(args.file)[1].lower() not in (".csv", ".json"):
        raise BadInput(f"export file must end in .csv or .json (the format), got {args.file!r}")
    directory = os.path.dirname(os.path.abspath(args.file))
    if not os.path.isdir(directory):
        raise BadInput(f"cannot export to {args.file!r}: directory {directory!r} does not exist")
    cache = _open_existing(args.cache, readonly=True)
    if cache is None:
        raise BadInput(f"no cache file at {args.cache!r}: nothing to export")
    with cache:
        _check_fingerprint(cache, args.fingerprint)
        n = cache.export(args.file, fingerprint=args.fingerprint)
    out.write(f"exported {n} row(s) to {args.file}\n")
    return 0


def _import(args, out):
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
        except CacheError as err:
            if str(err).startswith(f"cannot write {cache.path!r}"):
                raise  # the cache, not the file, is at fault
            raise BadInput(str(err)) from err
        after = len(cache)
    verb = "added or replaced" if args.overwrite else "added"
    out.write(f"imported {args.file}: {n} row(s) {verb}, cache {args.cache} now holds {after} row(s) "
              f"(was {before})\n")
    return 0


def _clear(args, out):
    if args.signature is not None and args.fingerprint is None:
        raise BadInput("--signature needs --fingerprint (a row is named by both)")
    cache = _open_existing(args.cache, readonly=False)
    if cache is None:
        out.write(f"cache {args.cache}: no file, nothing to clear\n")
        return 0
    with cache:
        if args.signature is None:  # a single row is deleted unread: it may be one that fails validation
            _check_fingerprint(cache, args.fingerprint)
        what = ("all rows" if args.fingerprint is None else f"the rows of fingerprint {args.fingerprint!r}"
                if args.signature is None else f"row {args.signature!r} of fingerprint {args.fingerprint!r}")
        if not args.yes:
            count = "" if args.signature is not None else f" ({len(cache.records(args.fingerprint))} row(s))"
            raise BadInput(f"refusing to delete {what}{count} of {args.cache!r} without --yes")
        n = cache.clear(args.fingerprint, args.signature)
    out.write(f"deleted {n} row(s) ({what}) from {args.cache}\n")
    return 0


def _migrate(args, out):
    old = args.old or args.cache
    if args.new is None:
        n, backup = migrate_in_place(old)
        out.write(f"migrated {old} to schema {SCHEMA_VERSION} in place: {n} row(s), quality unknown (NULL); "
                  f"the schema-1 file is kept as {backup}\n")
    else:
        n = migrate_to(old, args.new)
        out.write(f"migrated {n} row(s) of {old} into {args.new} (schema {SCHEMA_VERSION}, quality unknown: NULL); "
                  f"{old} is unchanged\n")
    return 0


def add_cache_commands(commands, add_cache_option, parser_class):
    """Registers ``cache`` and its actions on the ``nas-hw`` subparsers."""
    cache = commands.add_parser("cache", help="inspect, export, import, clear or migrate the latency cache")
    cmds = cache.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=parser_class)
    p = cmds.add_parser("ls", help="rows and their quality per device fingerprint (read-only)")
    p.add_argument("--rows", action="store_true", help="one line per row: value, spread, load, verdict")
    p.add_argument("--disturbed", action="store_true", help="with --rows: only rows flagged disturbed")
    p.add_argument("--fingerprint", default=None, metavar="FP", help="only this fingerprint")
    add_cache_option(p)
    p.set_defaults(handler=_ls)
    p = cmds.add_parser("export", help="write rows to FILE (.csv or .json; the cache is only read)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--fingerprint", default=None, metavar="FP", help="only this fingerprint's rows")
    add_cache_option(p)
    p.set_defaults(handler=_export)
    p = cmds.add_parser("import", help="merge rows from an export (rows keep their fingerprint)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--overwrite", action="store_true", help="replace rows already present (default: keep them)")
    add_cache_option(p)
    p.set_defaults(handler=_import)
    p = cmds.add_parser("clear", help="delete rows (all, one fingerprint's, or one row); needs --yes")
    p.add_argument("--fingerprint", default=None, metavar="FP", help="only this fingerprint's rows")
    p.add_argument("--signature", default=None, metavar="SIG", help="with --fingerprint: only this row")
    p.add_argument("--yes", action="store_true", help="really delete")
    add_cache_option(p)
    p.set_defaults(handler=_clear)
    p = cmds.add_parser("migrate", help="convert a schema-1 cache: in place (keeping OLD.schema1) or into NEW")
    p.add_argument("old", nargs="?", default=None, metavar="OLD", help="the schema-1 cache (default: --cache)")
    p.add_argument("new", nargs="?", default=None, metavar="NEW", help="write a new file here; OLD is not changed")
    add_cache_option(p)
    p.set_defaults(handler=_migrate)
    return cache
