"""The latency store on a PostgreSQL server (nas_hw/measure/store/postgres.py), against a real
server started by the session's ``pg_server`` fixture (tests/conftest.py): the SQLite store's
guarantees, several processes, the measuring lock, refused databases, lost connections."""
import json
import os
import signal
import subprocess
import sys

import pytest

from nas_hw import CacheError, LatencyCache
from nas_hw.measure.store import PostgresStore, open_cache
from nas_hw.measure.timing import TimingStats
from tests.conftest import REPO, summary

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "helpers_server.py")
FP = "synthetic-device"  # helpers_proc.SYN_FINGERPRINT


def stats(ms=1.0, n=5):
    s = ms * 1e-3
    return TimingStats(s, s, 0.0, s, n, n)


def start(*args):
    return subprocess.Popen([sys.executable, WORKER, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)


def finish(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def admin_sql(url, sql, *params):
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else None


# --------------------------------------------------------------------------- the interface

def test_same_behaviour_as_the_sqlite_store(pg_url, tmp_path):
    """The SQLite store's unit behaviour, on the server: counters, first write wins, measure once,
    records, summary, fingerprints, blobs, clear per fingerprint."""
    store = open_cache(pg_url)
    assert isinstance(store, PostgresStore) and store.exists
    assert store.get("fp", "sig:a") is None and (store.hits, store.misses) == (0, 1)
    rec = store.put("fp", "sig:a", stats(2.0), settings={"n_run": 5}, fingerprint_info={"ext": "cpu"})
    assert rec.latency("m") == pytest.approx(2.0) and rec.settings == {"n_run": 5}
    assert store.put("fp", "sig:a", stats(9.0)).latency("m") == pytest.approx(2.0)  # first wins
    calls = []
    got = store.get_or_measure("fp", "sig:b", lambda: calls.append(1) or (stats(3.0), False))
    again = store.get_or_measure("fp", "sig:b", lambda: calls.append(1) or (stats(7.0), False))
    assert got.latency() == again.latency() == pytest.approx(3.0) and calls == [1]
    assert store.measurements == 1 and len(store) == 2
    store.put("fp2", "sig:a", stats(1.0), noop=True)
    assert store.get("fp2", "sig:a").noop and not store.get("fp", "sig:a").noop
    assert [s["rows"] for s in store.summary()] == [2, 1]
    assert store.summary()[0]["sum_mean_ms"] == pytest.approx(5.0)
    assert store.fingerprint_info() == {"fp": {"ext": "cpu"}}
    store.put_blob("fp", "candidate_table", "k", {"a": [1, 2]})
    store.put_blob("fp", "candidate_table", "k", {"a": [3]})  # documents are replaced
    assert store.get_blob("fp", "candidate_table", "k") == {"a": [3]}
    assert store.blob_fingerprints("candidate_table", "k") == ["fp"]
    assert store.put("fp", "sig:a", stats(4.0), replace=True).latency() == pytest.approx(4.0)
    assert store.clear("fp2") == 1 and len(store) == 2
    store.close()
    with open_cache(pg_url) as reopened:  # another session sees every row
        assert [r.signature for r in reopened.records("fp")] == ["sig:a", "sig:b"]
        assert reopened.clear() == 2 and len(reopened) == 0 and reopened.get_blob("fp", "candidate_table", "k") is None


def test_url_from_the_environment_and_sqlite_refuses_a_url(pg_url, monkeypatch):
    monkeypatch.setenv("NAS_HW_CACHE", pg_url)
    with open_cache(None) as store:
        assert isinstance(store, PostgresStore)
        assert "pw-" not in store.path and store.path.startswith("postgresql://nas_hw:***@127.0.0.1:")
        assert "pw-" not in repr(store)
    with pytest.raises(ValueError, match="open_cache") as err:
        LatencyCache(None)
    assert "pw-" not in str(err.value)
    with pytest.raises(ValueError, match="open_cache"):
        LatencyCache(pg_url)


def test_open_cache_without_a_location_still_makes_the_default_directory(tmp_path, monkeypatch):
    """open_cache(None) dispatches on $NAS_HW_CACHE; without it, the per-user file (its directory
    made on first use, as LatencyCache(None) does)."""
    monkeypatch.delenv("NAS_HW_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh"))
    with open_cache(None) as store:
        assert isinstance(store, LatencyCache) and store.path == str(tmp_path / "fresh" / "nas_hw" / "latency.sqlite")


@pytest.mark.parametrize("bad", [
    TimingStats(float("nan"), 1e-3, 0.0, 1e-3, 5, 5), TimingStats(float("inf"), 1e-3, 0.0, 1e-3, 5, 5),
    TimingStats(-1e-3, 1e-3, 0.0, 1e-3, 5, 5), TimingStats(1e-3, 1e-3, 0.0, 1e-3, 0, 5),
    TimingStats(1e-3, 1e-3, 0.0, 1e-3, 5, 2)])
def test_invalid_measurements_are_refused(pg_url, bad):
    with open_cache(pg_url) as store:
        with pytest.raises(CacheError, match="refusing to store an invalid measurement"):
            store.put("fp", "sig", bad)
        assert len(store) == 0


def test_the_tables_refuse_what_another_client_writes(pg_url):
    """A client that is not nas_hw (psql, a script) cannot store a NaN, infinite or negative
    timing, nor a run count below 1: the server's CHECKs refuse it."""
    import psycopg

    open_cache(pg_url).close()
    for values in [("NaN", 1), ("Infinity", 1), ("-1", 1), ("1", 0)]:
        with pytest.raises(psycopg.errors.CheckViolation):
            admin_sql(pg_url, "INSERT INTO nas_hw_measurements (fingerprint, signature, mean_s, median_s, std_s, "
                      "min_s, n_kept, n_measured, noop, settings, created) "
                      "VALUES ('fp', 's', %s, 1, 0, 1, %s, 5, 0, '{}', 1)", *values)
    assert admin_sql(pg_url, "SELECT COUNT(*) FROM nas_hw_measurements") == [(0,)]


def test_quality_fields_round_trip_and_a_tampered_row_is_named_never_served(pg_url):
    """The quality fields (issue 13) are stored and read back; a row another client changed into
    something nas_hw would refuse (settings that are not JSON, min above the median) raises one
    line naming it on read, and clearing that one row lets it be measured again."""
    judged = TimingStats(2e-3, 2e-3, 1e-4, 1.9e-3, 9, 10, value=1.95e-3, spread=0.04, n_rounds=3, load1=1.5,
                         peers=2, disturbed=True)
    with open_cache(pg_url) as store:
        store.put("fp", "sig:q", judged)
        store.put("fp", "sig:bad", stats())
    with open_cache(pg_url) as store:
        assert store.get("fp", "sig:q").stats == judged
        assert [r.signature for r in store.records(disturbed=True)] == ["sig:q"]
        assert store.summary()[0]["disturbed"] == 1
    for column, value in [("settings", "not json"), ("min_s", 5.0)]:
        admin_sql(pg_url, f"UPDATE nas_hw_measurements SET {column} = %s WHERE signature = 'sig:bad'", value)
        with open_cache(pg_url) as store:
            with pytest.raises(CacheError, match=r"signature='sig:bad'.*changed outside nas_hw") as err:
                store.get("fp", "sig:bad")
            assert "\n" not in str(err.value) and "pw-" not in str(err.value)
        admin_sql(pg_url, "UPDATE nas_hw_measurements SET settings = '{}', min_s = 1e-3 WHERE signature = 'sig:bad'")
    admin_sql(pg_url, "UPDATE nas_hw_measurements SET settings = 'x' WHERE signature = 'sig:bad'")
    with open_cache(pg_url) as store:
        assert store.clear("fp", "sig:bad") == 1
        assert store.get_or_measure("fp", "sig:bad", lambda: (stats(3.0), False)).latency() == pytest.approx(3.0)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_import_round_trip_and_malformed_files(pg_url, tmp_path, fmt):
    with open_cache(pg_url) as store:
        for i in range(5):
            store.put("fp", f"sig:{i}", stats(i + 1.0), settings={"i": i}, fingerprint_info={"ext": "cpu"})
        path = tmp_path / f"lut.{fmt}"
        assert store.export(str(path)) == 5
        before = [r.as_row() for r in store.records()]
        store.clear()
        assert store.import_(str(path)) == 5 and store.import_(str(path)) == 0
        assert [r.as_row() for r in store.records()] == before
        assert store.import_(str(path), overwrite=True) == 5
        bad = tmp_path / "bad.json"
        rows = json.loads(open(path).read())["rows"] if fmt == "json" else before
        bad.write_text(json.dumps({"rows": [dict(rows[0], signature="new:1"), dict(rows[1], mean_s="NaN")]}))
        with pytest.raises(CacheError, match="malformed row"):
            store.import_(str(bad))
        assert len(store) == 5 and store.get("fp", "new:1") is None  # all or nothing


# --------------------------------------------------------------------------- refused databases

def test_read_only_open_creates_nothing(pg_url):
    store = open_cache(pg_url, readonly=True)
    assert not store.exists and store.readonly
    with pytest.raises(CacheError, match="opened read-only"):
        store.put("fp", "sig", stats())
    with pytest.raises(CacheError, match="opened read-only"):
        store.put_blob("fp", "k", "n", {})
    store.close()
    assert admin_sql(pg_url, "SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE 'nas_hw%%'") == [(0,)]


def test_foreign_tables_and_other_versions_are_left_untouched(pg_url):
    admin_sql(pg_url, "CREATE TABLE nas_hw_measurements (x int)")
    admin_sql(pg_url, "INSERT INTO nas_hw_measurements VALUES (42)")
    with pytest.raises(CacheError, match="not a nas_hw latency store; it was left untouched") as err:
        open_cache(pg_url)
    assert "pw-" not in str(err.value) and "\n" not in str(err.value)
    assert admin_sql(pg_url, "SELECT * FROM nas_hw_measurements") == [(42,)]
    assert admin_sql(pg_url, "SELECT to_regclass('nas_hw_meta')::text") == [(None,)]
    admin_sql(pg_url, "DROP TABLE nas_hw_measurements")
    open_cache(pg_url).close()
    admin_sql(pg_url, "UPDATE nas_hw_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(CacheError, match="schema version '99'"):
        open_cache(pg_url)


# --------------------------------------------------------------------------- several clients

def test_processes_race_on_the_same_signatures(pg_url):
    """4 processes walk the same 150 signatures, each measurement takes 5 ms: every signature
    is measured once overall (the advisory lock), none lost."""
    n = 150
    procs = [start("race", pg_url, n, "--sleep", 0.005) for _ in range(4)]
    results = []
    for p in procs:
        rc, out, err = finish(p)
        assert rc == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["measurements"] for r in results) == n, results
    assert admin_sql(pg_url, "SELECT COUNT(*), COUNT(DISTINCT signature) FROM nas_hw_measurements") == [(n, n)]
    summary(f"\nserver race: 4 processes, {n} signatures, measurements per process "
            f"{[r['measurements'] for r in results]}")


def test_clients_opening_a_fresh_database_at_once_create_the_tables_once(pg_server):
    """8 clients open one empty database at the same moment, 3 times: all of them get the store
    (the tables are created once, under a lock; none sees them half made)."""
    import threading

    for rep in range(3):
        url = pg_server.create_database(f"fresh{os.getpid()}_{rep}")
        barrier, outcomes = threading.Barrier(8), []

        def open_it():
            barrier.wait()
            try:
                with open_cache(url) as store:
                    outcomes.append(store.exists)
            except CacheError as err:
                outcomes.append(str(err))

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert outcomes == [True] * 8, outcomes


def test_measuring_lock_times_out_naming_its_holder_and_dies_with_it(pg_url):
    holder = start("hold", pg_url, FP)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert holder.stdout.readline().strip() == "locked"
        store = PostgresStore(pg_url, timeout_s=0.5)
        with pytest.raises(CacheError, match=r"timeout_s=0.5\) for the measuring lock of fingerprint") as err:
            store.get_or_measure(FP, "sig", lambda: (stats(), False))
        assert f"nas_hw {os.uname().nodename}:{holder.pid}"[:40] in str(err.value) and "\n" not in str(err.value)
        assert len(store) == 0
        # another fingerprint is not blocked
        assert store.get_or_measure("other", "sig", lambda: (stats(), False)).latency() == pytest.approx(1.0)
        holder.send_signal(signal.SIGKILL)  # the server releases a dead client's lock
        holder.wait(timeout=30)
        store.timeout_s = 60.0
        assert store.get_or_measure(FP, "sig", lambda: (stats(2.0), False)).latency() == pytest.approx(2.0)
        store.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


# --------------------------------------------------------------------------- faults

def fill_until(url, stop, n_first, sleep, reconnect_s):
    """Starts a fill worker and returns it once it has measured ``n_first`` signatures."""
    proc = start("fill", url, 0, stop, "--sleep", sleep, "--reconnect-s", reconnect_s)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    for _ in range(n_first):
        line = proc.stdout.readline()
        assert line.startswith("measured"), line + proc.stderr.read()
    return proc


def test_server_restart_mid_run_is_retried_and_measures_nothing_twice(pg_server, pg_url):
    """pg_ctl restart while a client measures: the client reconnects and finishes; every
    signature was measured exactly once and every row is whole."""
    n = 40
    proc = fill_until(pg_url, n, 5, 0.05, 60)
    pg_server.restart()
    rc, out, err = finish(proc)
    assert rc == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"measurements": n, "rows": n}
    assert "reconnected" in err
    assert admin_sql(pg_url, "SELECT COUNT(*) FROM nas_hw_measurements WHERE mean_s > 0 AND n_kept = 3") == [(n,)]


def test_server_down_ends_in_one_line_and_the_next_run_measures_only_what_is_missing(pg_server, pg_url):
    n = 40
    proc = fill_until(pg_url, n, 6, 0.05, 1)  # the 6th measurement starts once the 5th is stored
    pg_server.stop()
    try:
        rc, out, err = finish(proc)
    finally:
        pg_server.start()
    assert rc == 1, out + err
    lines = [line for line in err.splitlines() if line.startswith("CacheError")]
    assert len(lines) == 1 and "could not reconnect within 1 s" in lines[0], err
    assert "pw-" not in err and "***" in lines[0]
    stored = admin_sql(pg_url, "SELECT COUNT(*) FROM nas_hw_measurements")[0][0]
    assert 5 <= stored < n
    rc, out, err = finish(start("fill", pg_url, 0, n))
    assert rc == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"measurements": n - stored, "rows": n}
    summary(f"\nserver stopped mid-run: {stored} of {n} rows kept, the next run measured {n - stored}")


@pytest.mark.parametrize("case", ["wrong password", "missing database", "closed port"])
def test_refused_connections_are_one_line(pg_server, pg_url, case, tmp_path):
    from tests.pg_server import _free_port

    url = {"wrong password": pg_url.replace(pg_server.password, "not-the-password"),
           "missing database": pg_server.url("no_such_db"),
           "closed port": f"postgresql://nas_hw:{pg_server.password}@127.0.0.1:{_free_port()}/x"}[case]
    with pytest.raises(CacheError) as err:
        PostgresStore(url)
    text = str(err.value)
    assert "\n" not in text and "pw-" not in text and "not-the-password" not in text
    assert text.startswith("cannot connect to the latency store postgresql://nas_hw:***@127.0.0.1:")
    assert {"wrong password": "password authentication failed",
            "missing database": 'database "no_such_db" does not exist',
            "closed port": "refused"}[case] in text
