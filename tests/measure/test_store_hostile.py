"""Issue 16, classes 2-6, and the store half of issue 13: hostile destinations, foreign files,
tampered rows, a stuck peer, hostile imports, row quality and the schema-1 migration.

Every hostile input is built here with plain file writes or plain ``sqlite3``; each must end in
one line naming the problem, with nothing that is not nas_hw's modified.
"""
import csv
import errno
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc

import pytest

from nas_hw.app.cli import main
from nas_hw.constants import CACHE_APPLICATION_ID, MAX_IMPORT_CSV_BYTES, MAX_IMPORT_JSON_BYTES
from nas_hw.errors import CacheError, FileWriteError
from nas_hw.measure.store import LatencyCache
from nas_hw.measure.store.migrate import migrate_in_place, migrate_to
from nas_hw.measure.timing import TimingStats
from tests.conftest import REPO
from tests.measure.store_files import (GOOD_ROW, NOW, legacy_row, listing, make_schema1, raw_sql,
                                       snapshot)

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "helpers_proc.py")


def stats(ms=1.0, **quality):
    s = ms * 1e-3
    return TimingStats(s, s, 0.0, s, 5, 5, **quality)


def one_line(err):
    text = str(err)
    assert "\n" not in text and text, text
    return text


def filled(path, n=3):
    with LatencyCache(path) as cache:
        for i in range(n):
            cache.put("cpu|test", f"sig:{i}", stats(1.0 + i), fingerprint_info={"cpu": "test"})
    return str(path)


# --------------------------------------------------------------------------- class 2: destinations

@pytest.mark.parametrize("ext", ["csv", "json"])
def test_export_refuses_a_link_at_the_destination_and_never_writes_through_it(tmp_path, ext, capsys):
    cache = filled(tmp_path / "c.sqlite")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    dest = tmp_path / f"lut.{ext}"
    os.symlink(victim, dest)
    assert main(["cache", "export", str(dest), "--cache", cache]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symbolic link" in err
    assert victim.read_text() == "precious\n" and os.path.islink(dest)
    assert [n for n in listing(tmp_path) if n.endswith(".tmp")] == []


def test_export_never_uses_a_predictable_temporary_name(tmp_path):
    """The old export wrote ``FILE.tmp<pid>`` with open(): links planted at such names are never
    followed; the temporary file is created exclusively under a random name."""
    cache = LatencyCache(filled(tmp_path / "c.sqlite"))
    dest = tmp_path / "lut.json"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    for name in (f"lut.json.tmp{os.getpid()}", "lut.json.tmp", ".lut.json.tmp"):
        os.symlink(victim, tmp_path / name)
    assert cache.export(dest) == 3
    assert victim.read_text() == "precious\n" and not os.path.islink(dest)
    assert json.loads(dest.read_text())["rows"][0]["signature"] == "sig:0"
    assert sorted(n for n in listing(tmp_path) if "tmp" in n) == sorted(
        [f"lut.json.tmp{os.getpid()}", "lut.json.tmp", ".lut.json.tmp"])  # only the planted links


def test_a_full_disk_leaves_no_temporary_file_and_one_line(tmp_path, monkeypatch):
    import nas_hw.files as files

    cache = LatencyCache(filled(tmp_path / "c.sqlite"))
    dest = tmp_path / "lut.csv"
    dest.write_text("old export\n")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(FileWriteError) as info:
        cache.export(dest)
    assert "No space left on device" in one_line(info.value) and str(dest) in str(info.value)
    assert dest.read_text() == "old export\n"
    assert [n for n in listing(tmp_path) if n.endswith(".tmp")] == []


def test_a_real_write_error_in_a_process_leaves_no_temporary_file(tmp_path):
    """A file-size limit makes the kernel refuse the write (EFBIG) inside `nas-hw cache export`."""
    cache = filled(tmp_path / "c.sqlite", n=200)
    dest = tmp_path / "lut.json"
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (49152, 49152)); "  # the -shm file needs 32 KiB
            "from nas_hw.app.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "cache", "export", str(dest), "--cache", cache],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("nas-hw: error:")]
    assert len(errors) == 1 and "cannot write" in errors[0] and "nothing was written" in errors[0], proc.stderr
    assert not dest.exists() and [n for n in listing(tmp_path) if n.endswith(".tmp")] == []


def test_other_whole_file_writers_refuse_links_too(tmp_path):
    from nas_hw.report.writers import write_json

    class Report:
        def to_dict(self):
            return {"rows": []}

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "table.json"
    os.symlink(victim, link)
    with pytest.raises(FileWriteError, match="symbolic link"):
        write_json(Report(), link)
    assert victim.read_text() == "precious\n"


def test_no_module_writes_a_whole_file_but_through_the_helper():
    """Every whole-file write goes through nas_hw/files.py (one mechanism, not one per writer)."""
    import re

    root = os.path.join(REPO, "nas_hw")
    pattern = re.compile(r"os\.replace\(|os\.rename\(|open\([^)]*,\s*[\"']w[b+]?[\"']|\.tmp\b")
    offenders = []
    for base, _, names in os.walk(root):
        for name in names:
            path = os.path.join(base, name)
            if name.endswith(".py") and path != os.path.join(root, "files.py"):
                with open(path) as fh:
                    offenders += [f"{os.path.relpath(path, REPO)}:{i}" for i, line in enumerate(fh, 1)
                                  if pattern.search(line)]
    assert offenders == []


def test_the_lock_file_may_not_be_a_link(tmp_path):
    cache = LatencyCache(filled(tmp_path / "c.sqlite"))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.symlink(victim, str(cache.path) + ".lock")
    with pytest.raises(CacheError, match="symbolic link"):
        cache.get_or_measure("fp", "sig:new", lambda: (stats(), False))
    assert victim.read_text() == "precious\n" and len(cache) == 3


# --------------------------------------------------------------------------- class 3: foreign files

def _view_only(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE VIEW numbers AS SELECT 1 AS one")
    conn.execute("PRAGMA user_version=7")
    conn.commit()
    conn.close()


def _users_v1(path):  # no mark and user_version 1, like a schema-1 cache, but someone else's
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()


def _ours_newer(path):
    LatencyCache(path).close()
    raw_sql(path, "PRAGMA user_version=9")


FOREIGN = {
    "zero-byte": (lambda p: open(p, "wb").close(), "empty file"),
    "text": (lambda p: open(p, "w").write("my notes\n" * 40), "not an SQLite database"),
    "view-only sqlite": (_view_only, "without nas_hw's mark"),
    "user_version-1 sqlite": (_users_v1, "without nas_hw's mark"),
    "newer nas_hw schema": (_ours_newer, "cache of schema 9"),
}


def _commands(path, tmp_path):
    lut = tmp_path / "lut.json"
    lut.write_text(json.dumps({"rows": [GOOD_ROW]}))
    return {
        "open": lambda: LatencyCache(path),
        "open read-only": lambda: LatencyCache(path, readonly=True),
        "ls": lambda: main(["cache", "ls", "--cache", path]),
        "ls --rows": lambda: main(["cache", "ls", "--rows", "--cache", path]),
        "export": lambda: main(["cache", "export", str(tmp_path / "out.csv"), "--cache", path]),
        "import": lambda: main(["cache", "import", str(lut), "--cache", path]),
        "clear": lambda: main(["cache", "clear", "--yes", "--cache", path]),
        "migrate": lambda: main(["cache", "migrate", path]),
        "migrate NEW": lambda: main(["cache", "migrate", path, str(tmp_path / "new.sqlite")]),
    }


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_foreign_files_are_refused_by_every_command_and_left_untouched(tmp_path, kind, capsys):
    from tests.conftest import summary

    make, words = FOREIGN[kind]
    path = str(tmp_path / "thing.sqlite")
    make(path)
    before, files_before = snapshot(path), listing(tmp_path)
    commands = _commands(path, tmp_path)
    for name, run in commands.items():
        files_before = listing(tmp_path)
        try:
            code = run()
        except CacheError as err:
            assert words in one_line(err) and path in str(err), (name, str(err))
        else:
            assert code in (1, 2), name
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and words in err, (name, err)
        assert snapshot(path) == before, f"{name} changed {kind}"
        assert set(listing(tmp_path)) - set(files_before) <= {"lut.json"}, f"{name} left files beside {kind}"
    summary(f"[store] class 3 foreign file {kind}: {len(commands)} commands refused it, file untouched")


def test_read_only_commands_never_write_our_own_cache(tmp_path, capsys):
    path = filled(tmp_path / "c.sqlite")
    before = snapshot(path)
    for argv in (["ls"], ["ls", "--rows"], ["ls", "--rows", "--disturbed"], ["export", str(tmp_path / "o.csv")]):
        assert main(["cache", *argv, "--cache", path]) == 0
        assert snapshot(path) == before, argv
    with LatencyCache(path, readonly=True) as cache:
        assert len(cache.records()) == 3
        with pytest.raises(CacheError, match="read-only"):
            cache.put("fp", "sig", stats())
        with pytest.raises(CacheError, match="read-only"):
            cache.clear()
    assert snapshot(path) == before
    # a missing file is read as empty and not created
    assert len(LatencyCache(tmp_path / "none.sqlite", readonly=True)) == 0
    assert not (tmp_path / "none.sqlite").exists()


def test_a_new_cache_carries_the_mark_and_appears_whole(tmp_path):
    path = tmp_path / "new.sqlite"
    LatencyCache(path).close()
    with open(path, "rb") as fh:
        head = fh.read(100)
    assert int.from_bytes(head[68:72], "big") == CACHE_APPLICATION_ID
    assert int.from_bytes(head[60:64], "big") == 2 and head[18:20] == b"\x02\x02"  # WAL
    assert [n for n in listing(tmp_path) if n.endswith(".tmp")] == []


# --------------------------------------------------------------------------- class 4: values

@pytest.mark.parametrize("field, value, words", [
    ("mean_s", float("inf"), "not finite"), ("median_s", 1e300, "must be in"),
    ("min_s", 0.5, "more than median_s"), ("n_measured", 10 ** 9, "must be in"),
    ("spread", float("inf"), "not finite"), ("disturbed", 7, "0 or 1"),
    ("created", 1.0, "before 2000")])
def test_a_row_tampered_outside_nas_hw_is_named_on_read(tmp_path, field, value, words, capsys):
    path = filled(tmp_path / "c.sqlite")
    raw_sql(path, (f"UPDATE measurements SET {field}=? WHERE signature='sig:1'", (value,)), ignore_checks=True)
    cache = LatencyCache(path)
    with pytest.raises(CacheError) as info:
        cache.get("cpu|test", "sig:1")
    msg = one_line(info.value)
    assert "'cpu|test'" in msg and "'sig:1'" in msg and field in msg and words in msg
    for argv in (["ls"], ["export", str(tmp_path / "o.json")]):
        assert main(["cache", *argv, "--cache", path]) == 1
        assert "sig:1" in capsys.readouterr().err
    # the way out the message names: delete that row (unread); it is then measured again
    assert main(["cache", "clear", "--fingerprint", "cpu|test", "--signature", "sig:1", "--yes", "--cache", path]) == 0
    cache.forget()
    assert [r.signature for r in cache.records()] == ["sig:0", "sig:2"]


def test_the_schema_refuses_text_and_blobs_and_a_changed_schema_is_refused(tmp_path):
    path = filled(tmp_path / "c.sqlite")
    for value in ("fast", b"\x01\x02"):  # ('0.001' would be stored as the number 0.001)
        with pytest.raises(sqlite3.IntegrityError):
            raw_sql(path, ("UPDATE measurements SET mean_s=? WHERE signature='sig:0'", (value,)), ignore_checks=True)
    # someone replaces the table by one without STRICT and CHECKs: refused before any row is read
    raw_sql(path, "ALTER TABLE measurements RENAME TO m_old",
            "CREATE TABLE measurements AS SELECT * FROM m_old", "DROP TABLE m_old",
            "UPDATE measurements SET mean_s='fast'")
    before = snapshot(path)
    for readonly in (False, True):
        with pytest.raises(CacheError, match="schema was changed outside nas_hw"):
            LatencyCache(path, readonly=readonly)
    assert snapshot(path) == before


def test_a_trigger_added_to_a_cache_is_refused(tmp_path):
    path = filled(tmp_path / "c.sqlite")
    raw_sql(path, "CREATE TRIGGER t AFTER INSERT ON measurements BEGIN DELETE FROM fingerprints; END")
    with pytest.raises(CacheError, match="changed outside nas_hw"):
        LatencyCache(path)


@pytest.mark.parametrize("kwargs, field", [
    (dict(ms=1e300), "mean_s"), (dict(spread=-1.0), "spread"), (dict(n_rounds=0), "n_rounds"),
    (dict(load1=float("inf")), "load1"), (dict(peers=-2), "peers"), (dict(value=float("nan")), "value_s"),
    (dict(peers=True), "peers"), (dict(spread="0.1"), "spread")])
def test_put_refuses_absurd_values_naming_the_field(kwargs, field):
    cache = LatencyCache(":memory:")
    with pytest.raises(CacheError) as info:
        cache.put("fp", "sig:x", stats(**kwargs))
    assert field in one_line(info.value) and "sig:x" in str(info.value)
    assert len(cache) == 0


# --------------------------------------------------------------------------- class 5: a stuck peer

def _stopped_holder(path, what):
    proc = subprocess.Popen([sys.executable, WORKER, "hold", str(path), what], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "held", proc.stderr.read()[-2000:]
    proc.send_signal(signal.SIGSTOP)
    return proc


def _ends(call):
    """Runs ``call`` in a thread; returns its exception (the test fails if it never ends)."""
    box = {}

    def run():
        try:
            call()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            box["err"] = err

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "the waiter did not honour its timeout"
    return box.get("err")


def test_a_stopped_lock_holder_is_named_and_the_wait_ends(tmp_path, caplog):
    path = filled(tmp_path / "c.sqlite")
    holder = _stopped_holder(path, "lock")
    try:
        cache = LatencyCache(path, timeout_s=2)
        measured = []
        with caplog.at_level(logging.INFO, logger="nas_hw.measure.store.lock"):
            err = _ends(lambda: cache.get_or_measure("cpu|test", "sig:new", lambda: measured.append(1) or (stats(), False)))
        assert isinstance(err, CacheError), err
        msg = one_line(err)
        assert f"pid {holder.pid}" in msg and socket.gethostname() in msg and "gave up after 2 s" in msg
        assert "since" in msg and measured == []
        waits = [r for r in caplog.records if "waiting for the measuring lock" in r.getMessage()]
        assert waits and waits[0].levelno == logging.INFO and f"pid {holder.pid}" in waits[0].getMessage()
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.kill()
        holder.communicate(timeout=60)
    # the holder is gone: its note says so, and the lock is free again
    from nas_hw.measure.store.lock import describe_holder, read_holder

    assert "that process is gone" in describe_holder(read_holder(path + ".lock"))
    assert cache.get_or_measure("cpu|test", "sig:new", lambda: (stats(), False)).latency() == pytest.approx(1.0)


def test_a_stopped_writer_inside_a_transaction_ends_in_one_line(tmp_path):
    path = filled(tmp_path / "c.sqlite")
    holder = _stopped_holder(path, "db")
    try:
        cache = LatencyCache(path, timeout_s=1)
        err = _ends(lambda: cache.put("cpu|test", "sig:late", stats()))
        assert isinstance(err, CacheError) and "cannot write" in one_line(err) and "timeout_s=1" in str(err)
        assert cache.get("cpu|test", "sig:0") is not None  # reading still works (WAL)
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.kill()
        holder.communicate(timeout=60)


# --------------------------------------------------------------------------- class 6: imports

def _csv(path, rows, header=None, prefix=b""):
    header = header or list(GOOD_ROW)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(h, "") if isinstance(r, dict) else r for h in header] if isinstance(r, dict) else r)
    if prefix:
        data = open(path, "rb").read()
        open(path, "wb").write(prefix + data)


HOSTILE = {
    # name: (writer(path), words the one line must hold)
    "deep.json": (lambda p: open(p, "w").write('{"rows": ' + "[" * 200000 + "]" * 200000 + "}"),
                  "nested too deeply"),
    "bool.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, n_kept=True)]})),
                  "row 1: n_kept=True is a boolean"),
    "text-number.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, mean_s="0.1")]})),
                         "row 1: mean_s='0.1' is str, not a number"),
    "runs.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, n_kept=10, n_measured=10 ** 7)]})),
                  "row 1: n_measured=10000000 must be in"),
    "old.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, created=5e8)]})),
                 "row 1: created=500000000.0 is before 2000"),
    "future.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, created=time.time() + 9e5)]})),
                    "row 1: created="),
    "order.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, min_s=0.5)]})),
                   "row 1: min_s=0.5 is more than median_s"),
    "absurd.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, mean_s=1e300)]})),
                    "row 1: mean_s=1e+300 must be in"),
    "settings-list.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, settings=[1])]})),
                           "row 1: settings=[1] must be a JSON object"),
    "settings-huge.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, settings={"x": "y" * 70000})]})),
                           "row 1: settings="),
    "huge-signature.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, signature="s" * 20000)]})),
                            "row 1: signature="),
    "nul-key.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, fingerprint="a\x00b")]})),
                     "control characters"),
    "surrogate.json": (lambda p: open(p, "w").write('{"rows": [' + json.dumps(GOOD_ROW)[:-1] + ', "x": 1}]}'.replace(
        '"fingerprint": "cpu|fuzz"', '"fingerprint": "\\ud800"')), "row 1: "),
    "unknown-field.json": (lambda p: open(p, "w").write(json.dumps({"rows": [dict(GOOD_ROW, mean=1.0)]})),
                           "row 1: mean=1.0 is not a field"),
    "big-int.json": (lambda p: open(p, "w").write('{"rows": [{"n_kept": ' + "9" * 5000 + "}]}"), "not valid JSON"),
    "utf16.json": (lambda p: open(p, "wb").write(json.dumps({"rows": [GOOD_ROW]}).encode("utf-16")), "not UTF-8"),
    "newer.json": (lambda p: open(p, "w").write(json.dumps({"nas_hw_cache_schema": 3, "rows": []})),
                   "nas_hw_cache_schema=3"),
    "nul.csv": (lambda p: open(p, "wb").write(b"fingerprint,signature\n" + b"a\x00b,c\n"), "header"),
    "nul-row.csv": (lambda p: open(p, "wb").write(",".join(GOOD_ROW).encode() + b"\ncpu,a\x00b" + b",1" * 15 + b"\n"),
                    "row 1"),
    "short-row.csv": (lambda p: _csv(p, [["cpu", "sig"]]), "row 1: has 2 fields, the header has 17"),
    "unknown-column.csv": (lambda p: _csv(p, [GOOD_ROW], header=list(GOOD_ROW) + ["extra"]), "unknown column 'extra'"),
    "word.csv": (lambda p: _csv(p, [dict(GOOD_ROW, std_s="1_000")]), "row 1: std_s='1_000' is not a decimal number"),
    "inf.csv": (lambda p: _csv(p, [dict(GOOD_ROW, mean_s="inf")]), "row 1: mean_s='inf' is not a decimal number"),
    "latin1.csv": (lambda p: open(p, "wb").write(",".join(GOOD_ROW).encode() + b"\n\xe9t\xe9,x\n"), "line 2 is not UTF-8"),
    "quote.csv": (lambda p: open(p, "w").write(",".join(GOOD_ROW) + '\n"unterminated\n'), "row 1"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_import_files_end_in_one_line_naming_row_and_field(tmp_path, name):
    write, words = HOSTILE[name]
    path = tmp_path / name
    write(path)
    cache = LatencyCache(tmp_path / "c.sqlite")
    with pytest.raises(CacheError) as info:
        cache.import_(path)
    msg = one_line(info.value)
    assert words in msg and len(msg) < 2000, msg
    assert len(cache) == 0


def test_a_byte_order_mark_is_accepted(tmp_path):
    cache = LatencyCache(":memory:")
    _csv(tmp_path / "bom.csv", [GOOD_ROW], prefix=b"\xef\xbb\xbf")
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"rows": [GOOD_ROW]}).encode())
    assert cache.import_(tmp_path / "bom.csv") == 1
    assert cache.import_(tmp_path / "bom.json") == 0  # the same row: kept


def test_files_over_the_size_limit_are_refused_before_parsing(tmp_path):
    for name, limit in (("big.json", MAX_IMPORT_JSON_BYTES), ("big.csv", MAX_IMPORT_CSV_BYTES)):
        path = tmp_path / name
        with open(path, "wb") as fh:
            fh.truncate(limit + 1)  # sparse: costs no disk
        tracemalloc.start()
        with pytest.raises(CacheError, match=f"over the {limit} bytes"):
            LatencyCache(":memory:").import_(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 8 * 2 ** 20


def test_a_one_gigabyte_line_is_refused_with_bounded_memory(tmp_path):
    path = tmp_path / "line.csv"
    with open(path, "wb") as fh:
        fh.write((",".join(GOOD_ROW) + "\n").encode())
        fh.truncate(MAX_IMPORT_CSV_BYTES - 1)  # then ~1 GiB of NUL bytes on one line
    tracemalloc.start()
    with pytest.raises(CacheError) as info:
        LatencyCache(":memory:").import_(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "line 2 is longer than" in one_line(info.value)
    assert peak < 16 * 2 ** 20, peak


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    with pytest.raises(CacheError, match="not a regular file"):
        LatencyCache(":memory:").import_(path)


# --------------------------------------------------------------------------- issue 13: quality

QUALITY = dict(value=0.9e-3, spread=0.04, n_rounds=7, load1=1.25, peers=2, disturbed=True)


@pytest.mark.parametrize("ext", ["csv", "json"])
def test_quality_fields_round_trip_through_put_read_export_import(tmp_path, ext):
    a = LatencyCache(tmp_path / "a.sqlite")
    a.put("fp", "sig:q", stats(1.0, **QUALITY))
    a.put("fp", "sig:plain", stats(2.0))
    a.close()
    a = LatencyCache(tmp_path / "a.sqlite", readonly=True)
    got = a.get("fp", "sig:q").stats
    assert got == stats(1.0, **QUALITY)
    a.export(tmp_path / f"x.{ext}")
    b = LatencyCache(tmp_path / "b.sqlite")
    assert b.import_(tmp_path / f"x.{ext}") == 2
    assert {r.signature: r.stats for r in b.records()} == {r.signature: r.stats for r in a.records()}
    assert [r.signature for r in b.records(disturbed=True)] == ["sig:q"]
    assert [r.signature for r in b.records(disturbed=False)] == ["sig:plain"]


def test_replace_overwrites_one_row_and_first_write_wins_otherwise(tmp_path):
    cache = LatencyCache(tmp_path / "c.sqlite")
    cache.put("fp", "sig", stats(5.0, disturbed=True))
    cache.put("fp", "sig:other", stats(1.0))
    assert cache.put("fp", "sig", stats(1.0)).latency() == pytest.approx(5.0)
    fresh = cache.put("fp", "sig", stats(1.5, n_rounds=4), replace=True)
    assert fresh.latency() == pytest.approx(1.5) and fresh.stats.disturbed is False and fresh.stats.n_rounds == 4
    assert LatencyCache(tmp_path / "c.sqlite").get("fp", "sig").latency() == pytest.approx(1.5)
    assert cache.get("fp", "sig:other").latency() == pytest.approx(1.0) and len(cache) == 2


def test_ls_shows_quality_per_fingerprint_and_lists_disturbed_rows(tmp_path, capsys):
    path = str(tmp_path / "c.sqlite")
    with LatencyCache(path) as cache:
        cache.put("fp", "sig:a", stats(1.0, spread=0.01, load1=0.5, disturbed=False))
        cache.put("fp", "sig:b", stats(2.0, spread=0.03, load1=3.0, disturbed=True))
        cache.put("fp", "sig:c", stats(3.0, spread=0.02, load1=1.0, disturbed=False))
    assert main(["cache", "ls", "--cache", path]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.endswith(" fp"))
    assert line.split()[:6] == ["3", "1", "0", "0.020", "0.50-3.00", "6.000"]
    assert main(["cache", "ls", "--rows", "--disturbed", "--cache", path]) == 0
    out = capsys.readouterr().out
    assert "sig:b" in out and "sig:a" not in out and "sig:c" not in out
    row = next(x for x in out.splitlines() if x.endswith("sig:b"))
    assert "yes" in row.split() and "0.030" in row.split() and "3.00" in row.split()


# --------------------------------------------------------------------------- schema 1: migration

def _schema1(tmp_path, n=3, **kw):
    path = str(tmp_path / "old.sqlite")
    make_schema1(path, [legacy_row(i) for i in range(n)], info={"cpu|old": {"cpu": "old"}},
                 blobs=[("cpu|old", "calibration", "x", json.dumps({"scale": 1.0}), NOW)], **kw)
    return path


def test_a_schema1_cache_opens_read_only_and_says_how_to_migrate(tmp_path, capsys):
    path = _schema1(tmp_path)
    before = snapshot(path)
    with pytest.raises(CacheError) as info:
        LatencyCache(path)
    msg = one_line(info.value)
    assert "schema 1" in msg and f"nas-hw cache migrate {path}" in msg
    with LatencyCache(path, readonly=True) as old:
        recs = old.records()
        assert len(recs) == 3 and old.get_blob("cpu|old", "calibration", "x") == {"scale": 1.0}
        assert all(r.stats.value is None and r.stats.spread is None and r.stats.disturbed is None
                   and r.stats.n_rounds == 1 for r in recs)
    assert main(["cache", "ls", "--cache", path]) == 0
    out = capsys.readouterr().out
    assert "schema 1" in out and "nas-hw cache migrate" in out
    assert next(x for x in out.splitlines() if x.endswith("cpu|old")).split()[:3] == ["3", "0", "3"]
    assert snapshot(path) == before


def test_migrate_into_a_new_file_leaves_the_old_one_as_it_was(tmp_path, capsys):
    path = _schema1(tmp_path)
    before = snapshot(path)
    new = str(tmp_path / "new.sqlite")
    assert main(["cache", "migrate", path, new]) == 0
    assert "3 row(s)" in capsys.readouterr().out
    assert snapshot(path) == before
    with LatencyCache(new) as cache:
        assert [r.latency() for r in cache.records()] == pytest.approx([1.0, 2.0, 3.0])
        assert all(r.stats.disturbed is None and r.stats.load1 is None for r in cache.records())
        assert cache.fingerprint_info() == {"cpu|old": {"cpu": "old"}}
        assert cache.get_blob("cpu|old", "calibration", "x") == {"scale": 1.0}
    with pytest.raises(CacheError, match="exists"):
        migrate_to(path, new)


def test_migrate_in_place_keeps_a_copy_and_the_cache_works_after(tmp_path):
    path = _schema1(tmp_path)
    n, backup = migrate_in_place(path)
    assert n == 3 and backup == path + ".schema1"
    with LatencyCache(backup, readonly=True) as old:
        assert old.schema == 1 and len(old.records()) == 3
    with LatencyCache(path) as cache:
        assert cache.schema == 2 and len(cache.records()) == 3
        cache.put("cpu|old", "sig:new", stats(4.0, disturbed=False))
        assert cache.summary()[0]["unknown"] == 3
    with pytest.raises(CacheError, match="already a schema-2"):
        migrate_in_place(path)


def test_migrate_stops_at_a_tampered_row_and_changes_nothing(tmp_path):
    path = _schema1(tmp_path, n=4)
    raw_sql(path, "UPDATE measurements SET mean_s='fast' WHERE signature='fn:Old2'")
    before = snapshot(path)
    for run in (lambda: migrate_in_place(path), lambda: migrate_to(path, str(tmp_path / "n.sqlite"))):
        with pytest.raises(CacheError) as info:
            run()
        msg = one_line(info.value)
        assert "fn:Old2" in msg and "mean_s='fast'" in msg and "not a number" in msg
        assert snapshot(path) == before
    assert not os.path.exists(path + ".schema1") and not os.path.exists(tmp_path / "n.sqlite")
