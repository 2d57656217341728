"""Reliability of the latency cache and the layer estimators under crashes, concurrency and
measurement faults. Counts are printed (visible with ``pytest -s``)."""
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import nnabla as nn
import nnabla.functions as F
import pytest

import nas_hw.estimators.layer as base
from nas_hw import CacheError, LatencyCache, LatencyGraphEstimator, MeasurementError
from nas_hw.measure.timing import TimingStats
from nas_hw.measure.timing import measure as real_measure

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import helpers_proc  # noqa: E402
from tests.conftest import summary
import nas_hw.measure.timing as timing_module  # the layer estimators time through timing.measure

WORKER = os.path.join(HERE, "helpers_proc.py")
from tests.conftest import REPO as ROOT
FAST_KW = dict(device_id=0, ext_name="cpu", n_warmup=0, max_measure_execution_time=1, n_run=2)


def start(*args):
    return subprocess.Popen([sys.executable, WORKER, *map(str, args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    assert "database is locked" not in err
    return json.loads(out.strip().splitlines()[-1])


def check_file(path):
    """Opens the file as a cache and validates every row; returns the row count."""
    with LatencyCache(path) as cache:  # no CacheError after any crash
        assert cache.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = cache.conn.execute(
            "SELECT fingerprint, signature, mean_s, median_s, std_s, min_s, n_kept, n_measured, "
            "noop, settings, created FROM measurements").fetchall()
        for row in rows:
            assert all(v is not None for v in row), row
            fp, sig, mean, median, std, mn, n_kept, n_measured, noop, settings, created = row
            assert all(isinstance(v, float) and math.isfinite(v) and v >= 0
                       for v in (mean, median, std, mn)), row
            assert n_kept >= 1 and n_measured >= n_kept, row
            json.loads(settings)
            if sig.startswith("syn:"):  # synthetic rows carry a known value: nothing torn
                want = helpers_proc.syn_seconds(int(sig[4:]))
                assert fp == helpers_proc.SYN_FINGERPRINT and mean == median == mn == pytest.approx(want)
            else:
                assert sig.startswith(("fn:", "mod:")), sig
        assert len(cache) == len(rows) == len({(r[0], r[1]) for r in rows})
        return len(rows)


def test_sigkill_at_random_points_never_corrupts_and_resumes(tmp_path):
    path = str(tmp_path / "crash.sqlite")
    rng = random.Random(1234)
    # Each synthetic measurement takes 0.5 ms and a light run is killed within 0.25 s, so a run
    # adds at most ~500 rows: 25 runs never finish the 20000 and every run is really killed.
    n_syn = 20000
    kills, checked, previous = 0, 0, 0
    plan = ["light"] * 22 + ["real"] * 3
    rng.shuffle(plan)
    for kind in plan:
        if kind == "real":  # straight to measuring real layers (nnabla import, timing, store)
            proc = start("fill", path, n_syn, n_syn, "--real")
        else:
            proc = start("fill", path, 0, n_syn, "--sleep", 0.0005)
        assert proc.stdout.readline().strip() == "opening", proc.stderr.read()[-2000:]
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
        time.sleep(rng.uniform(0.0, 0.25 if kind == "light" else 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        rows = check_file(path)
        assert rows >= previous  # committed rows never vanish
        previous = rows
        checked += rows
    assert kills >= 20
    # the next run resumes: it measures exactly what is missing
    before = check_file(path)
    result = finish(start("fill", path, 0, n_syn, "--real"))
    total = n_syn + helpers_proc.N_REAL_SIGNATURES
    assert result["rows"] == total == check_file(path)
    assert result["measurements"] == total - before
    summary(f"\ncrash safety: {kills} SIGKILLs survived, {checked} rows validated across checks, "
          f"{before} rows present before resuming, resume measured {result['measurements']} "
          f"(total {total})")


def test_sigkill_while_creating_a_fresh_cache_file(tmp_path):
    """Killed while opening a new file (schema creation, WAL switch) or writing its first rows:
    what is left is either no file or a complete cache (a new file is linked in whole); never a CacheError."""
    rng = random.Random(99)
    outcomes = {"no file": 0, "opened": 0}
    for i in range(12):
        path = str(tmp_path / f"fresh{i}.sqlite")
        proc = start("fill", path, 0, 50)
        assert proc.stdout.readline().strip() == "opening", proc.stderr.read()[-2000:]
        time.sleep(rng.uniform(0.0, 0.6))  # while the new file is built, linked in, its first rows written
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        if not os.path.exists(path):
            outcomes["no file"] += 1
            continue
        check_file(path)
        outcomes["opened"] += 1
    assert sum(outcomes.values()) == 12
    summary(f"\nfresh-file kills: {outcomes}")


def test_four_processes_race_on_the_same_signatures(tmp_path):
    """Synthetic measurements that take 2 ms each, the same 300 signatures in 4 processes:
    each measured exactly once overall, none lost, no 'database is locked'."""
    path = str(tmp_path / "race.sqlite")
    n = 300
    results = [finish(p) for p in [start("race", path, n, "--sleep", 0.002) for _ in range(4)]]
    rows = check_file_race(path)
    assert rows == n
    assert sum(r["measurements"] for r in results) == n, results
    summary(f"\nrace: 4 processes, {n} signatures, measurements per process "
          f"{[r['measurements'] for r in results]}, rows {rows}")


def check_file_race(path):
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        distinct = conn.execute("SELECT COUNT(DISTINCT signature) FROM measurements").fetchone()[0]
        assert rows == distinct
        return rows
    finally:
        conn.close()


def test_four_processes_estimate_overlapping_networks(tmp_path):
    path = str(tmp_path / "nets.sqlite")
    specs = [["darts:sample:0", "mobilenet:sample:0"], ["mobilenet:sample:0", "darts:sample:0"],
             ["darts:sample:0", "darts:sample:1"], ["mobilenet:sample:1", "mobilenet:sample:0"]]
    procs = [start("estimate", path, *s, "--size", 8, "--n-run", 2) for s in specs]
    results = [finish(p) for p in procs]
    rows = check_file(path)
    measured = sum(r["measurements"] for r in results)
    assert measured == rows > 0, results
    by_key = {}
    for r in results:
        for k, v in r["estimates"].items():
            by_key.setdefault(k, set()).add(v)
    assert all(len(v) == 1 for v in by_key.values()), by_key
    summary(f"\nconcurrency: 4 processes, {rows} rows, {measured} measurements "
          f"({[r['measurements'] for r in results]}), {len(by_key)} estimates identical across processes")


# --------------------------------------------------------------------------- measurement faults


def _raise_for(type_name):
    def fake(fn, **kwargs):
        ran = []
        nn.set_function_pre_hook("nas_hw_rel", lambda f: ran.append(f.info.type_name))
        try:
            fn()
        finally:
            nn.unset_function_pre_hook("nas_hw_rel")
        if type_name in ran:
            raise RuntimeError(f"{type_name} forward failed on purpose")
        return real_measure(fn, **kwargs)
    return fake


def _nan_for(type_name):
    def fake(fn, **kwargs):
        ran = []
        nn.set_function_pre_hook("nas_hw_rel", lambda f: ran.append(f.info.type_name))
        try:
            fn()
        finally:
            nn.unset_function_pre_hook("nas_hw_rel")
        if type_name in ran:
            return real_measure(fn, clock=lambda: float("nan"), **kwargs)
        return real_measure(fn, **kwargs)
    return fake


def _slow_for(type_name, seconds):
    def fake(fn, **kwargs):
        def slow():
            ran = []
            nn.set_function_pre_hook("nas_hw_rel", lambda f: ran.append(f.info.type_name))
            try:
                fn()
            finally:
                nn.unset_function_pre_hook("nas_hw_rel")
            if type_name in ran:
                time.sleep(seconds)
        return real_measure(slow, **kwargs)
    return fake


def _graph():
    x = nn.Variable((1, 4, 8, 8))
    return F.sigmoid(F.relu(F.add_scalar(x, 1.0)))


@pytest.mark.parametrize("fault", ["raises", "nan", "run_timeout"])
def test_measurement_faults_are_errors_and_never_cached(fault, tmp_path, monkeypatch):
    fake = {"raises": _raise_for("ReLU"), "nan": _nan_for("ReLU"),
            "run_timeout": _slow_for("ReLU", 0.05)}[fault]
    monkeypatch.setattr(timing_module, "measure", fake)
    path = str(tmp_path / "faults.sqlite")
    kw = dict(FAST_KW, run_timeout=0.02)  # a healthy 1x4x8x8 function takes microseconds
    with pytest.raises(MeasurementError) as info:
        LatencyGraphEstimator(cache=path, **kw).get_estimation(_graph())
    assert "ReLU" in info.value.signature and info.value.layer.endswith(":ReLU")
    est = LatencyGraphEstimator(cache=path, on_error="warn", **kw)
    total = est.get_estimation(_graph())
    assert [f.signature.split("|")[0] for f in est.failures] == ["fn:ReLU"]
    assert sorted(c.signature.split("|")[0] for c in est.breakdown) == ["fn:AddScalar", "fn:Sigmoid"]
    assert total == pytest.approx(sum(c.latency for c in est.breakdown)) and total > 0
    est.cache.close()
    with LatencyCache(path) as fresh:  # what a later process would see
        assert sorted(r.signature.split("|")[0] for r in fresh.records()) == ["fn:AddScalar", "fn:Sigmoid"]
    # once the fault is gone, the layer is measured (nothing poisoned the cache)
    monkeypatch.setattr(timing_module, "measure", real_measure)
    healed = LatencyGraphEstimator(cache=path, **FAST_KW)
    assert healed.get_estimation(_graph()) > total - 1e-12
    assert healed.cache.measurements == 1


def test_cache_never_stores_a_refused_value_even_directly(tmp_path):
    path = str(tmp_path / "direct.sqlite")
    with LatencyCache(path) as cache:
        for bad in (float("nan"), float("inf"), -1.0):
            with pytest.raises(CacheError):
                cache.put("fp", f"sig:{bad}", TimingStats(bad, bad, 0.0, bad, 1, 1))
            with pytest.raises(MeasurementError):
                cache.get_or_measure("fp", "sig:m", base.LayerEstimator._guard(
                    lambda bad=bad: (TimingStats(bad, bad, 0.0, bad, 1, 1), False)))
        assert len(cache) == 0 and cache.measurements == 0
