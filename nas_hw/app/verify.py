"""``nas-hw cache verify``: re-measure stored rows, report their drift, optionally replace them.

A row's ``fn:`` signature says everything needed to build its nnabla function again (type,
arguments, input shapes, dtypes: :func:`~nas_hw.measure.signature.parse_function_signature`),
so it is timed again exactly as it was measured (the row's own settings), on this device. A
``mod:`` row (a leaf module, measured by ``LatencyEstimator``) names a module class, not its
code: it cannot be rebuilt from the cache alone and is skipped (the output says how many). Rows
of another device fingerprint cannot be measured here either (skipped, counted); no-op rows
(identities) have nothing to time.

    nas-hw cache verify                          a random sample of 20 rows: drift per row and device
    nas-hw cache verify --match 'fn:Depthwise*' --all
    nas-hw cache verify --disturbed --refresh    re-measure every flagged row, replace those now clean
    nas-hw cache verify --match 'fn:Conv*' --refresh

Drift = value measured now / stored value - 1 (the robust statistic both). ``--refresh`` replaces
a row with the new measurement when it is clean, or when the stored one was flagged too (a new
flagged measurement is no worse); a stored clean row is never replaced by a disturbed one.
"""
import fnmatch
import logging
import os
import random
import statistics

import nnabla as nn

from ..constants import DRIFT_LIMIT, MAX_WAIT_FOR_QUIET_S
from ..errors import MeasurementError, UsageError
from ..estimators.graph import LatencyGraphEstimator
from ..measure.device import Device
from ..measure.load import check_quiet
from ..measure.signature import parse_function_signature
from ..measure.store import is_server_url, open_cache

logger = logging.getLogger(__name__)

#: Rows re-measured by default (without ``--all``, ``--sample`` or ``--refresh``).
DEFAULT_SAMPLE = 20


def add_arguments(parser):
    """Fills the ``cache verify`` subparser."""
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help=f"re-measure a random sample of N of the selected rows (default {DEFAULT_SAMPLE}; "
                             "with --refresh: all of them)")
    parser.add_argument("--all", action="store_true", help="re-measure every selected row")
    parser.add_argument("--match", default=None, metavar="PATTERN",
                        help="only rows whose signature matches this shell pattern (fnmatch: * ? [..])")
    parser.add_argument("--disturbed", action="store_true", help="only rows flagged disturbed")
    parser.add_argument("--refresh", action="store_true",
                        help="replace each re-measured row by its new measurement (not a clean row by a "
                             "disturbed one)")
    parser.add_argument("--fingerprint", default=None, metavar="FP", help="only this fingerprint's rows")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    parser.add_argument("--ext-name", default="cpu", help="this device's nnabla extension (default cpu)")
    parser.add_argument("--device-id", type=int, default=0, help="this device's index (default 0)")
    parser.add_argument("--type-config", default="float", help="float, half or mixed_half (default float)")
    parser.add_argument("--wait-for-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="wait at most this long for a quiet machine before measuring (default 0: "
                             "report a busy one only)")


def select(records, fingerprint=None, match=None, disturbed=False):
    """The rows a verify looks at: of ``fingerprint`` (all when ``None``), whose signature matches
    ``match``, flagged disturbed when ``disturbed``."""
    out = []
    for rec in records:
        if fingerprint is not None and rec.fingerprint != fingerprint:
            continue
        if match is not None and not fnmatch.fnmatchcase(rec.signature, match):
            continue
        if disturbed and not rec.stats.disturbed:
            continue
        out.append(rec)
    return out


def _estimator_for(device, settings):
    """A throw-away graph estimator timing like the row's settings did."""
    kwargs = {k: settings[k] for k in ("n_run", "n_warmup", "max_measure_execution_time", "outlier")
              if k in settings}
    return LatencyGraphEstimator(ext_name=device.ext_name, device_id=device.device_id,
                                 type_config=device.type_config, cache=":memory:", **kwargs)


def remeasure(rec, device):
    """TimingStats of the row's function measured now on ``device`` with the row's settings.

    Raises:
        ValueError: the row's signature cannot be read back (a module row, malformed).
        MeasurementError: the function cannot be built or run here.
    """
    spec = parse_function_signature(rec.signature)
    estimator = _estimator_for(device, rec.settings or {})
    with nn.context_scope(estimator.ctx):
        return estimator.measure_spec(spec)


def _skip_reason(rec, here):
    """Why a row cannot be re-measured on the device ``here`` ('' when it can)."""
    if rec.fingerprint != here:
        return "rows of another device fingerprint (re-measure them on that device)"
    if rec.noop:
        return "no-op rows (nothing to time)"
    if rec.signature.startswith("mod:"):
        return "mod: rows (a module signature names a class, not its code: it cannot be rebuilt from the cache)"
    return ""


def drift(stored, now):
    """``now / stored - 1`` of the robust values (``None`` when the stored value is 0)."""
    base = stored.robust
    return None if base <= 0 else now.robust / base - 1


def run_verify(cache, args, out):
    """Runs ``nas-hw cache verify`` on an open ``cache``; writes the report to ``out``.

    Returns:
        dict: ``rows`` (one dict per re-measured row), ``skipped`` (reason -> count),
        ``fingerprints`` (per-fingerprint drift summary), ``replaced`` (count).
    """
    device = Device(args.ext_name, args.device_id, args.type_config)
    here = device.fingerprint.key
    info = device.fingerprint.as_dict()
    chosen = select(cache.records(args.fingerprint), None, args.match, args.disturbed)
    skipped, eligible = {}, []
    for rec in chosen:
        reason = _skip_reason(rec, here)
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
        else:
            eligible.append(rec)
    n = len(eligible) if (args.all or (args.refresh and args.sample is None)) else \
        min(len(eligible), DEFAULT_SAMPLE if args.sample is None else args.sample)
    if n < len(eligible):
        eligible = sorted(random.Random(args.seed).sample(eligible, n), key=lambda r: r.signature)
    out.write(f"cache {cache.path}: {len(chosen)} row(s) selected, re-measuring {len(eligible)} on {here}\n")
    for reason, count in sorted(skipped.items()):
        out.write(f"  skipped {count}: {reason}\n")
    rows, replaced = [], 0
    if eligible:
        state = check_quiet("nas-hw cache verify", cache.path, args.wait_for_quiet)
        out.write(f"  machine: {state.describe()}\n")
    for rec in eligible:
        try:
            now = remeasure(rec, device)
        except (ValueError, MeasurementError) as err:
            rows.append({"signature": rec.signature, "fingerprint": rec.fingerprint, "error": str(err)})
            continue
        row = {"signature": rec.signature, "fingerprint": rec.fingerprint, "stored_s": rec.stats.robust,
               "now_s": now.robust, "drift": drift(rec.stats, now),
               "stored_disturbed": bool(rec.stats.disturbed), "now_disturbed": bool(now.disturbed),
               "now_spread": now.spread, "replaced": False}
        if args.refresh and (not now.disturbed or rec.stats.disturbed):
            cache.put(rec.fingerprint, rec.signature, now, dict(rec.settings or {}), False, info, replace=True)
            row["replaced"] = True
            replaced += 1
        rows.append(row)
    _write_rows(rows, out)
    summary = per_fingerprint(rows)
    for fp, s in summary.items():
        out.write(f"fingerprint {fp}: {s['rows']} row(s) re-measured, drift median {s['median_pct']:+.1f}%, "
                  f"worst {s['worst_pct']:+.1f}%, {s['over_limit']} beyond ±{100 * DRIFT_LIMIT:.0f}%, "
                  f"{s['now_disturbed']} disturbed now\n")
    errors = [r for r in rows if "error" in r]
    if errors:
        out.write(f"{len(errors)} row(s) could not be re-measured: {errors[0]['error']}\n")
    if args.refresh:
        out.write(f"replaced {replaced} row(s)"
                  + (f"; kept {sum(1 for r in rows if 'error' not in r and not r['replaced'])} stored clean row(s) "
                     "whose new measurement was disturbed" if any('error' not in r and not r['replaced'] for r in rows)
                     else "") + "\n")
    return {"rows": rows, "skipped": skipped, "fingerprints": summary, "replaced": replaced}


def per_fingerprint(rows):
    """Per fingerprint: rows re-measured, median and worst drift (%), rows beyond the drift limit."""
    groups = {}
    for r in rows:
        if "error" not in r and r["drift"] is not None:
            groups.setdefault(r["fingerprint"], []).append(r)
    out = {}
    for fp, rs in groups.items():
        drifts = [100 * r["drift"] for r in rs]
        out[fp] = {"rows": len(rs), "median_pct": statistics.median(drifts),
                   "worst_pct": max(drifts, key=abs), "over_limit": sum(1 for d in drifts if abs(d) > 100 * DRIFT_LIMIT),
                   "now_disturbed": sum(1 for r in rs if r["now_disturbed"])}
    return out


def _write_rows(rows, out):
    if not rows:
        return
    head = ("stored_us", "now_us", "drift", "flags", "signature")
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(("-", "-", "error", "", r["signature"]))
            continue
        flags = ",".join(f for f, on in (("stored-disturbed", r["stored_disturbed"]),
                                         ("now-disturbed", r["now_disturbed"]), ("replaced", r["replaced"])) if on)
        lines.append((f"{1e6 * r['stored_s']:.2f}", f"{1e6 * r['now_s']:.2f}",
                      "n/a" if r["drift"] is None else f"{100 * r['drift']:+.1f}%", flags or "-", r["signature"]))
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head[:-1])]
    for line in [head] + lines:
        cells = [c.rjust(w) if i < 3 else c.ljust(w) for i, (c, w) in enumerate(zip(line[:-1], widths))]
        sig = line[-1] if len(line[-1]) <= 140 else line[-1][:137] + "..."
        out.write("  " + "  ".join(cells) + "  " + sig + "\n")


def run(args, out):
    """The ``cache verify`` handler (the cache path resolved by the CLI)."""
    if args.sample is not None and args.sample < 1:
        raise UsageError(f"--sample must be >= 1, got {args.sample}")
    if args.all and args.sample is not None:
        raise UsageError("--all and --sample exclude each other")
    if not 0 <= args.wait_for_quiet <= MAX_WAIT_FOR_QUIET_S:
        raise UsageError(f"--wait-for-quiet must be seconds in [0, {MAX_WAIT_FOR_QUIET_S:g}], got {args.wait_for_quiet}")
    if args.cache != ":memory:" and not is_server_url(args.cache) and not os.path.exists(args.cache):
        raise UsageError(f"no cache file at {args.cache!r}: nothing to verify")
    with open_cache(args.cache, readonly=not args.refresh) as cache:
        if args.fingerprint is not None and args.fingerprint not in {s["fingerprint"] for s in cache.summary()}:
            raise UsageError(f"fingerprint {args.fingerprint!r} has no rows in {args.cache!r}")
        run_verify(cache, args, out)
    return 0
