"""The persistent latency cache: unit behaviour, refusal of foreign or broken files, export and
import, and its use by several processes."""
import csv
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from nas_hw import CacheError, LatencyCache
from nas_hw.measure.store import SCHEMA_VERSION, default_cache_path, open_cache
from nas_hw.measure.timing import TimingStats
from tests.conftest import REPO, summary

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "helpers_proc.py")


def stats(ms=1.0, n=5):
    s = ms * 1e-3
    return TimingStats(s, s, 0.0, s, n, n)


def run_worker(*args, timeout=240):
    proc = subprocess.run([sys.executable, WORKER, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- unit behaviour

def test_counters_put_get_and_first_write_wins(tmp_path):
    cache = LatencyCache(tmp_path / "c.sqlite")
    assert cache.get("fp", "sig:a") is None
    assert (cache.hits, cache.misses, cache.measurements) == (0, 1, 0)
    rec = cache.put("fp", "sig:a", stats(2.0), settings={"n_run": 5})
    assert rec.latency("m") == pytest.approx(2.0) and rec.settings == {"n_run": 5}
    assert cache.get("fp", "sig:a").latency("u") == pytest.approx(2000.0)
    assert (cache.hits, cache.misses) == (1, 1)
    # the first stored measurement wins
    assert cache.put("fp", "sig:a", stats(9.0)).latency("m") == pytest.approx(2.0)
    calls = []
    got = cache.get_or_measure("fp", "sig:b", lambda: calls.append(1) or (stats(3.0), False))
    again = cache.get_or_measure("fp", "sig:b", lambda: calls.append(1) or (stats(7.0), False))
    assert got.latency() == again.latency() == pytest.approx(3.0) and calls == [1]
    assert cache.measurements == 1 and len(cache) == 2
    cache.reset_counters()
    assert (cache.hits, cache.misses, cache.measurements) == (0, 0, 0)
    cache.close()
    reopened = LatencyCache(tmp_path / "c.sqlite")
    assert reopened.get("fp", "sig:a").latency() == pytest.approx(2.0)
    assert [r.signature for r in reopened.records("fp")] == ["sig:a", "sig:b"]


def test_noop_rows_and_fingerprints_are_separate(tmp_path):
    cache = LatencyCache(":memory:")
    cache.put("fp1", "sig", stats(1.0))
    cache.put("fp2", "sig", stats(0.0), noop=True)
    assert cache.get("fp1", "sig").noop is False and cache.get("fp2", "sig").noop is True
    assert [s["fingerprint"] for s in cache.summary()] == ["fp1", "fp2"]
    assert cache.clear("fp1") == 1 and len(cache) == 1 and cache.get("fp1", "sig") is None


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_schema_refuses_invalid_timings(bad):
    cache = LatencyCache(":memory:")
    with pytest.raises(CacheError, match="sig:bad"):
        cache.put("fp", "sig:bad", TimingStats(bad, bad, 0.0, bad, 1, 1))
    assert len(cache) == 0
    # the schema's own CHECKs (STRICT admits infinity in a REAL column; the range check does not)
    # and NOT NULL (NaN is bound as NULL), for a write that bypasses put()
    for value in (bad, "0.001x", b"\x00", 1e30):
        with pytest.raises(sqlite3.IntegrityError):
            cache.conn.execute("INSERT INTO measurements (fingerprint, signature, mean_s, median_s, std_s, min_s, "
                               "n_kept, n_measured, n_rounds, noop, settings, created) "
                               "VALUES ('fp','raw',?,0,0,0,1,1,1,0,'{}',1.7e9)", (value,))


def test_missing_directory_is_a_cache_error(tmp_path):
    path = tmp_path / "nope" / "c.sqlite"
    with pytest.raises(CacheError, match="does not exist"):
        LatencyCache(path)
    assert not (tmp_path / "nope").exists()


def test_read_only_directory_is_a_cache_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user chmod cannot restrict (root)")
        with pytest.raises(CacheError, match="not writable"):
            LatencyCache(ro / "c.sqlite")
    finally:
        os.chmod(ro, 0o700)


def test_default_path_comes_from_NAS_HW_CACHE(tmp_path, monkeypatch):
    path = tmp_path / "env.sqlite"
    monkeypatch.setenv("NAS_HW_CACHE", str(path))
    assert default_cache_path() == str(path)
    cache = open_cache(None)
    assert cache.path == str(path) and path.exists()
    monkeypatch.delenv("NAS_HW_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == str(tmp_path / "xdg" / "nas_hw" / "latency.sqlite")
    with pytest.raises(TypeError, match="cache must be"):
        open_cache(42)


# --------------------------------------------------------------------------- foreign or broken files

def _filled_cache_file(path, n=400):
    cache = LatencyCache(path)
    for i in range(n):
        cache.put("fp", f"sig:{i:04d}:" + "x" * 100, stats(1.0 + i))
    cache.close()
    assert not os.path.exists(f"{path}-wal") or os.path.getsize(f"{path}-wal") == 0


def _truncated(path):
    _filled_cache_file(path)
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)


def _foreign(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.commit()
    conn.close()


def _text(path):
    with open(path, "w") as fh:
        fh.write("these are my notes, not a database\n" * 50)


def _other_version(path):
    _filled_cache_file(path, n=3)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("make, words", [(_truncated, "not a usable|integrity"),
                                         (_foreign, "not a nas_hw latency cache"),
                                         (_text, "not an SQLite database"),
                                         (_other_version, "cache of schema 99")])
def test_broken_or_foreign_files_are_refused_and_left_untouched(tmp_path, make, words):
    path = str(tmp_path / "thing.sqlite")
    make(path)
    with open(path, "rb") as fh:
        before = fh.read()
    with pytest.raises(CacheError, match=words) as info:
        LatencyCache(path)
    assert path in str(info.value)
    with open(path, "rb") as fh:
        assert fh.read() == before


# --------------------------------------------------------------------------- export / import

@pytest.mark.parametrize("ext", ["csv", "json"])
def test_export_import_round_trip_merges_fingerprints(tmp_path, ext):
    a = LatencyCache(tmp_path / "a.sqlite")
    a.put("dev-A", "sig:1", stats(1.0), settings={"n_run": 3}, fingerprint_info={"backend": "cpu"})
    a.put("dev-A", "sig:2", stats(0.0), noop=True)
    b = LatencyCache(tmp_path / "b.sqlite")
    b.put("dev-B", "sig:1", stats(5.0))
    fa, fb = tmp_path / f"a.{ext}", tmp_path / f"b.{ext}"
    assert a.export(fa) == 2 and b.export(fb) == 1
    merged = LatencyCache(tmp_path / "m.sqlite")
    assert merged.import_(fa) == 2 and merged.import_(fb) == 1
    assert merged.import_(fa) == 0  # already there: nothing added
    got = {(r.fingerprint, r.signature): r for r in merged.records()}
    assert set(got) == {("dev-A", "sig:1"), ("dev-A", "sig:2"), ("dev-B", "sig:1")}
    assert got[("dev-A", "sig:1")].latency() == pytest.approx(1.0)
    assert got[("dev-A", "sig:1")].settings == {"n_run": 3}
    assert got[("dev-A", "sig:2")].noop is True
    assert got[("dev-B", "sig:1")].latency() == pytest.approx(5.0)
    if ext == "json":
        assert merged.fingerprint_info() == {"dev-A": {"backend": "cpu"}}
    # one fingerprint only, and --overwrite replaces
    only = tmp_path / f"only.{ext}"
    assert merged.export(only, fingerprint="dev-B") == 1
    b.clear()
    b.put("dev-B", "sig:1", stats(8.0))
    assert b.import_(only) == 0 and b.get("dev-B", "sig:1").latency() == pytest.approx(8.0)
    assert b.import_(only, overwrite=True) == 1 and b.get("dev-B", "sig:1").latency() == pytest.approx(5.0)


GOOD = {"fingerprint": "fp", "signature": "sig:ok", "mean_s": "0.001", "median_s": "0.001",
        "std_s": "0", "min_s": "0.001", "n_kept": "3", "n_measured": "3", "noop": "0",
        "settings": "{}", "created": "1700000000"}
GOOD_JSON = dict(GOOD, mean_s=0.001, median_s=0.001, std_s=0.0, min_s=0.001, n_kept=3, n_measured=3, noop=0,
                 created=1700000000.0)


@pytest.mark.parametrize("ext", ["csv", "json"])
def test_malformed_imports_are_refused_whole(tmp_path, ext):
    bad_rows = [dict(GOOD, signature="sig:nan", mean_s="nan"),
                dict(GOOD, signature="sig:neg", min_s="-0.5"),
                dict(GOOD, signature="sig:word", median_s="fast"),
                {k: v for k, v in GOOD.items() if k != "std_s"}]
    if ext == "json":  # typed values: text is not a number in JSON
        bad_rows = [dict(GOOD_JSON, signature="sig:nan", mean_s=float("nan")),
                    dict(GOOD_JSON, signature="sig:neg", min_s=-0.5),
                    dict(GOOD_JSON, signature="sig:word", median_s="fast"),
                    {k: v for k, v in GOOD_JSON.items() if k != "std_s"}]
    rows = [GOOD if ext == "csv" else GOOD_JSON] + bad_rows
    path = tmp_path / f"in.{ext}"
    if ext == "csv":
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(GOOD))
            w.writeheader()
            w.writerows(rows)
    else:
        path.write_text(json.dumps({"nas_hw_cache_schema": SCHEMA_VERSION, "rows": rows}))
    cache = LatencyCache(":memory:")
    with pytest.raises(CacheError) as info:
        cache.import_(path)
    msg = str(info.value)
    assert "4 malformed row(s)" in msg and "nothing imported" in msg
    for needle in ("row 2", "mean_s", "row 3", "min_s", "row 4", "'fast'", "row 5", "std_s"):
        assert needle in msg
    assert len(cache) == 0


def test_import_refuses_files_that_are_not_exports(tmp_path):
    cache = LatencyCache(":memory:")
    (tmp_path / "x.json").write_text("[1, 2]")
    (tmp_path / "y.csv").write_text("a,b\n1,2\n")
    (tmp_path / "z.json").write_text("{not json")
    (tmp_path / "w.json").write_text(json.dumps({"rows": [], "fingerprints": ["a"]}))
    for name, words in (("x.json", "not a nas_hw cache export"), ("y.csv", "CSV header"),
                        ("z.json", "not valid JSON"), ("missing.csv", "cannot read"),
                        ("w.json", "'fingerprints' must map")):
        with pytest.raises(CacheError, match=words):
            cache.import_(tmp_path / name)
    with pytest.raises(CacheError, match=".csv or .json"):
        cache.export(tmp_path / "out.txt")


# --------------------------------------------------------------------------- several processes

def test_second_process_measures_nothing_and_agrees(tmp_path):
    path = tmp_path / "shared.sqlite"
    nets = ["mobilenet:sample:1", "darts:sample:2"]
    first = run_worker("estimate", path, *nets, "--size", 8, "--n-run", 2)
    assert first["measurements"] == first["rows"] > 0
    second = run_worker("estimate", path, *nets, "--size", 8, "--n-run", 2)
    assert second["measurements"] == 0
    assert second["estimates"] == first["estimates"]
    other = run_worker("estimate", path, *nets, "--size", 8, "--fingerprint", "some-other-device")
    assert other["error"] == "MissingMeasurementsError" and other["measurements"] == 0
    assert other["missing"] and all(s.startswith(("mod:", "fn:")) for s in other["missing"])
    cache = LatencyCache(path)
    assert len(cache) == first["rows"]
    assert set(other["missing"]) <= {r.signature for r in cache.records()}


def test_four_processes_fill_one_file_without_loss(tmp_path):
    path = tmp_path / "shared.sqlite"
    specs = [["mobilenet:sample:0", "darts:sample:0"], ["mobilenet:sample:0", "darts:sample:1"],
             ["darts:sample:0", "mobilenet:sample:1"], ["mobilenet:sample:0", "darts:sample:1"]]
    procs = [subprocess.Popen([sys.executable, WORKER, "estimate", str(path), *s, "--size", "8", "--n-run", "2"], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
             for s in specs]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
        assert "database is locked" not in err
        results.append(json.loads(out.strip().splitlines()[-1]))
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    distinct = conn.execute("SELECT COUNT(DISTINCT fingerprint || '#' || signature) FROM measurements").fetchone()[0]
    conn.close()
    assert rows == distinct > 0
    assert sum(r["measurements"] for r in results) == rows, results
    # the same network in several processes got the same estimate (one measurement each layer)
    by_key = {}
    for r in results:
        for k, v in r["estimates"].items():
            by_key.setdefault(k, set()).add(v)
    assert all(len(v) == 1 for v in by_key.values()), by_key
    summary(f"4 processes: {rows} rows, {sum(r['measurements'] for r in results)} measurements")
