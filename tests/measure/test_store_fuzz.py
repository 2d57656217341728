"""Property-based hostile files for the store (issue 16, classes 2, 3, 4, 6): generated LUT
files, tampered caches, foreign files and export destinations, with fixed seeds.

Each property checks the one outcome the class allows: the input is used as it should be, or
it ends in one line (a :class:`CacheError` / :class:`FileWriteError`) naming the row and field
where there is one, and nothing that is not nas_hw's is changed. The counts of hostile inputs
tried per class are printed in the test session's summary.
"""
import collections
import csv
import io
import json
import math
import os
import sqlite3
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas_hw.constants import CACHE_APPLICATION_ID, MAX_SETTINGS_BYTES
from nas_hw.errors import CacheError, FileWriteError
from nas_hw.measure.store import LatencyCache
from nas_hw.measure.store.rows import COLUMNS
from nas_hw.measure.timing import TimingStats
from tests.conftest import summary
from tests.measure.store_files import GOOD_ROW, legacy_row, make_schema1, snapshot

COUNTS = collections.Counter()
FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def fuzz(n):
    return settings(FUZZ, max_examples=n)


def one_line(err, limit=4000):
    text = str(err)
    assert text and "\n" not in text and len(text) < limit, text[:300]
    return text


# -- invalid values, per kind of field (each one refused, whatever its type) ------------------
TEXT = st.text(max_size=12)
JUNK = st.one_of(st.booleans(), TEXT, st.lists(st.integers(), max_size=2),
                 st.dictionaries(TEXT, st.integers(), max_size=2))
BAD_TIME = st.one_of(JUNK, st.sampled_from([math.nan, math.inf, -math.inf, -1e-9, 3601.0, 1e300, -5]))
BAD_COUNT = st.one_of(JUNK, st.floats(allow_nan=True), st.integers(max_value=0), st.integers(min_value=10 ** 6 + 1))
BAD_OPTIONAL_REAL = st.one_of(st.booleans(), TEXT.filter(bool), st.lists(st.integers(), min_size=1, max_size=2),
                              st.sampled_from([math.nan, math.inf, -1.0, 1e7, 1e300]))
BAD_FLAG = st.one_of(st.integers().filter(lambda i: i not in (0, 1)), st.floats(), TEXT.filter(bool),
                     st.lists(st.integers(), min_size=1, max_size=1))
BAD_KEY = st.one_of(st.just(""), st.integers(), st.floats(), st.booleans(), st.lists(TEXT, max_size=1),
                    st.text(alphabet="\x00\x01\n\r\x7f", min_size=1, max_size=3).map(lambda s: "a" + s),
                    st.just("x" * 20000))
BAD_SETTINGS = st.one_of(st.integers(), st.lists(st.integers(), max_size=2), TEXT.map(lambda s: "{" + s),
                         st.just("[" * 5000 + "]" * 5000), st.just({"x": "y" * (MAX_SETTINGS_BYTES + 1)}),
                         st.just('{"a": NaN}'))
BAD_CREATED = st.one_of(JUNK, st.sampled_from([0, 1.0, 9.4e8, 1e12, math.inf, math.nan]))
BAD = {"fingerprint": BAD_KEY, "signature": BAD_KEY, "mean_s": BAD_TIME, "median_s": BAD_TIME,
       "std_s": BAD_TIME, "min_s": BAD_TIME, "n_kept": BAD_COUNT, "n_measured": BAD_COUNT,
       "value_s": BAD_OPTIONAL_REAL, "spread": BAD_OPTIONAL_REAL, "n_rounds": BAD_COUNT,
       "load1": BAD_OPTIONAL_REAL, "peers": st.one_of(BAD_COUNT.filter(lambda v: v != 0), st.just(-1)),
       "disturbed": BAD_FLAG, "noop": BAD_FLAG, "settings": BAD_SETTINGS, "created": BAD_CREATED}


def _good(i):
    return dict(GOOD_ROW, signature=f"fn:Good{i}|in=1x{i}:float32")


def _csv_text(rows, header=COLUMNS):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(["" if r.get(c) is None else (json.dumps(r[c]) if isinstance(r[c], (dict, list)) else r[c])
                    for c in header])
    return buf.getvalue()


@st.composite
def lut_with_a_bad_field(draw):
    fmt = draw(st.sampled_from(["json", "csv"]))
    field = draw(st.sampled_from(sorted(BAD)))
    value = draw(BAD[field])
    if fmt == "csv" and field in ("fingerprint", "signature") and not isinstance(value, str):
        value = "x" * 20000  # CSV holds text only: a text too long stands for a wrong type
    rows = [_good(i) for i in range(draw(st.integers(0, 3)))]
    position = draw(st.integers(0, len(rows)))
    rows.insert(position, dict(_good(99), **{field: value}))
    return fmt, field, position + 1, rows


def _write_lut(path, fmt, rows):
    if fmt == "json":
        text = json.dumps({"nas_hw_cache_schema": 2, "rows": rows}, allow_nan=True)
    else:
        text = _csv_text(rows)
    with open(path, "w", encoding="utf-8", errors="surrogatepass", newline="") as fh:
        fh.write(text)


@fuzz(90)
@given(case=lut_with_a_bad_field())
def test_generated_luts_with_a_bad_field_are_refused_naming_row_and_field(case):
    fmt, field, row, rows = case
    COUNTS[f"6: {fmt} row with a bad {field}"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"lut.{fmt}")
        try:
            _write_lut(path, fmt, rows)
        except (UnicodeEncodeError, csv.Error):  # text no file can hold as UTF-8 / CSV
            return
        with LatencyCache(os.path.join(tmp, "c.sqlite")) as cache:
            try:
                cache.import_(path)
            except CacheError as err:
                msg = one_line(err)
                if "nested too deeply" not in msg and "not valid JSON" not in msg:
                    assert f"row {row}:" in msg and field in msg, msg
            else:
                raise AssertionError(f"{fmt}: {field}={rows[row - 1][field]!r} was imported")
            assert len(cache) == 0


MUTATIONS = ("insert bytes", "truncate", "nul byte", "bom", "wrap in arrays", "repeat a line", "drop a quote",
             "huge field")


@st.composite
def mangled_lut(draw):
    fmt = draw(st.sampled_from(["json", "csv"]))
    rows = [_good(i) for i in range(draw(st.integers(1, 3)))]
    data = (json.dumps({"rows": rows}, indent=1) if fmt == "json" else _csv_text(rows)).encode()
    how = draw(st.sampled_from(MUTATIONS))
    at = draw(st.integers(0, len(data)))
    if how == "insert bytes":
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif how == "truncate":
        data = data[:at]
    elif how == "nul byte":
        data = data[:at] + b"\x00" + data[at + 1:]
    elif how == "bom":
        data = b"\xef\xbb\xbf" + data
    elif how == "wrap in arrays":
        depth = draw(st.integers(1, 100000))
        data = b"[" * depth + data + b"]" * depth
    elif how == "repeat a line":
        lines = data.split(b"\n")
        i = draw(st.integers(0, len(lines) - 1))
        data = b"\n".join(lines[:i] + [lines[i]] * draw(st.integers(2, 4)) + lines[i:])
    elif how == "drop a quote":
        data = data.replace(b'"', b"", 1)
    else:
        data = data[:at] + b"9" * draw(st.integers(5000, 300000)) + data[at:]
    return fmt, how, data, len(rows)


@fuzz(80)
@given(case=mangled_lut())
def test_mangled_lut_files_import_whole_or_end_in_one_line(case):
    fmt, how, data, n_rows = case
    COUNTS[f"6: {fmt} file, {how}"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"lut.{fmt}")
        with open(path, "wb") as fh:
            fh.write(data)
        with LatencyCache(os.path.join(tmp, "c.sqlite")) as cache:
            try:
                added = cache.import_(path)
            except CacheError as err:
                one_line(err)
                assert len(cache) == 0
            else:  # what was accepted is whole and reads back valid
                assert added == len(cache) == len(cache.records()) and added <= n_rows + 3


# -- tampered caches ---------------------------------------------------------------------------
SQL_VALUES = st.one_of(st.none(), st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1), st.floats(),
                       st.sampled_from([math.inf, -math.inf, 1e300, -0.0]), TEXT, st.binary(max_size=6))
STAT_COLUMNS = [c for c in COLUMNS if c not in ("fingerprint", "signature")]


@st.composite
def tampered_cache(draw):
    schema = draw(st.sampled_from([1, 2, 2]))
    cols = STAT_COLUMNS if schema == 2 else [c for c in STAT_COLUMNS if c in legacy_row(0)]
    return schema, draw(st.sampled_from(cols)), draw(SQL_VALUES), draw(st.integers(0, 2))


@fuzz(100)
@given(case=tampered_cache())
def test_tampered_caches_are_refused_by_the_schema_or_named_on_read(case):
    schema, field, value, which = case
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.sqlite")
        if schema == 2:
            with LatencyCache(path) as cache:
                for i in range(3):
                    cache.put("fp", f"sig:{i}", TimingStats(1e-3, 1e-3, 0.0, 1e-3, 3, 3, n_rounds=2))
        else:
            make_schema1(path, [legacy_row(i, fp="fp", signature=f"sig:{i}") for i in range(3)])
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA ignore_check_constraints=ON")  # a user's tool, not nas_hw
        try:
            conn.execute(f"UPDATE measurements SET {field}=? WHERE signature=?", (value, f"sig:{which}"))
            conn.commit()
        except sqlite3.IntegrityError:
            COUNTS[f"4: schema {schema} refused {field} (STRICT / NOT NULL)"] += 1
            return
        finally:
            conn.close()
        stored = sqlite3.connect(path).execute(f"SELECT {field}, typeof({field}) FROM measurements WHERE signature=?",
                                               (f"sig:{which}",)).fetchone()
        try:
            with LatencyCache(path, readonly=True) as cache:
                recs = {r.signature: r for r in cache.records()}
        except CacheError as err:
            msg = one_line(err)
            assert f"'sig:{which}'" in msg and field in msg, msg
            COUNTS[f"4: schema {schema} tampered {field} named on read"] += 1
            return
        # read back: the tampered value happened to be one nas_hw stores (a number in range)
        COUNTS[f"4: schema {schema} tampered {field} still valid"] += 1
        assert stored[1] in ("integer", "real", "text", "null"), stored
        got = recs[f"sig:{which}"].as_row()[field]
        if stored[1] in ("integer", "real"):
            assert got == stored[0] and (not isinstance(got, float) or math.isfinite(got))
        elif stored[1] == "text":
            assert field == "settings" and isinstance(json.loads(got), dict)
        else:
            assert got is None


@fuzz(30)
@given(offset=st.integers(0, 8191), junk=st.binary(min_size=1, max_size=64))
def test_overwritten_bytes_in_a_cache_file_end_in_one_line_or_read_valid(offset, junk):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.sqlite")
        with LatencyCache(path) as cache:
            for i in range(20):
                cache.put("fp", f"sig:{i}", TimingStats(1e-3, 1e-3, 0.0, 1e-3, 3, 3))
        with open(path, "r+b") as fh:
            fh.seek(offset)
            fh.write(junk)
        try:
            with LatencyCache(path, readonly=True) as cache:
                recs = cache.records()
            COUNTS["4: corrupted bytes, rows still valid"] += 1
            assert all(math.isfinite(r.latency()) for r in recs)
        except CacheError as err:
            one_line(err)
            COUNTS["4: corrupted bytes refused"] += 1


# -- foreign files -------------------------------------------------------------------------------
@st.composite
def foreign_file(draw):
    kind = draw(st.sampled_from(["bytes", "sqlite header", "sqlite"]))
    if kind == "bytes":
        return kind, draw(st.binary(min_size=0, max_size=300))
    if kind == "sqlite header":
        return kind, b"SQLite format 3\x00" + draw(st.binary(min_size=0, max_size=200))
    app_id = draw(st.one_of(st.just(0), st.integers(-2 ** 31, 2 ** 31 - 1), st.just(CACHE_APPLICATION_ID)))
    version = draw(st.integers(-2 ** 31, 2 ** 31 - 1))
    if app_id == CACHE_APPLICATION_ID and version == 2:
        version = 3
    objects = draw(st.lists(st.sampled_from(["table measurements (x)", "table fingerprints (x)", "table blobs (x)",
                                             "view v AS SELECT 1", "table t (a, b)"]), max_size=3, unique=True))
    return kind, (app_id, version, objects)


@fuzz(50)
@given(case=foreign_file())
def test_generated_foreign_files_are_refused_and_never_changed(case):
    kind, spec = case
    COUNTS[f"3: {kind}"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "thing.sqlite")
        if kind == "sqlite":
            app_id, version, objects = spec
            conn = sqlite3.connect(path)
            for obj in objects:
                conn.execute(f"CREATE {obj}")
            conn.execute(f"PRAGMA application_id={app_id}")
            conn.execute(f"PRAGMA user_version={version}")
            conn.commit()
            conn.close()
        else:
            with open(path, "wb") as fh:
                fh.write(spec)
        before, names = snapshot(path), sorted(os.listdir(tmp))
        for readonly in (False, True):
            try:
                LatencyCache(path, readonly=readonly).close()
            except CacheError as err:
                assert path in one_line(err)
            else:
                raise AssertionError(f"{kind} {spec!r} was opened as a cache")
            assert snapshot(path) == before and sorted(os.listdir(tmp)) == names


# -- export destinations ---------------------------------------------------------------------------
DESTINATIONS = ("missing", "regular", "link to a file", "dangling link", "link to a directory", "directory", "fifo")


@fuzz(30)
@given(kind=st.sampled_from(DESTINATIONS), ext=st.sampled_from(["csv", "json"]), planted=st.booleans())
def test_export_destinations_are_written_whole_or_refused(kind, ext, planted):
    COUNTS[f"2: export to {kind}"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        cache = LatencyCache(os.path.join(tmp, "c.sqlite"))
        cache.put("fp", "sig", TimingStats(1e-3, 1e-3, 0.0, 1e-3, 3, 3))
        victim = os.path.join(tmp, "victim")
        with open(victim, "w") as fh:
            fh.write("precious")
        dest = os.path.join(tmp, f"out.{ext}")
        if kind == "regular":
            with open(dest, "w") as fh:
                fh.write("old")
        elif kind == "link to a file":
            os.symlink(victim, dest)
        elif kind == "dangling link":
            os.symlink(os.path.join(tmp, "nowhere"), dest)
        elif kind == "link to a directory":
            os.symlink(tmp, dest)
        elif kind == "directory":
            os.mkdir(dest)
        elif kind == "fifo":
            os.mkfifo(dest)
        if planted:  # the names the old export used
            os.symlink(victim, f"{dest}.tmp{os.getpid()}")
        try:
            assert cache.export(dest) == 1
        except FileWriteError as err:
            assert kind not in ("missing", "regular") and dest in one_line(err)
        else:
            assert kind in ("missing", "regular") and not os.path.islink(dest)
            with open(dest) as fh:
                assert "sig" in fh.read()
        cache.close()
        with open(victim) as fh:
            assert fh.read() == "precious"
        assert not os.path.exists(os.path.join(tmp, "nowhere"))
        assert [n for n in os.listdir(tmp) if n.endswith(".tmp")] == []


def test_store_fuzz_counts():
    """Prints how many hostile inputs each class got (run the whole module for the full count)."""
    by_class = collections.Counter()
    for kind, n in COUNTS.items():
        by_class[f"class {kind.split(':')[0]}"] += n
    for name in sorted(by_class):
        detail = {k.split(": ", 1)[1]: v for k, v in sorted(COUNTS.items()) if f"class {k.split(':')[0]}" == name}
        summary(f"[store-fuzz] {name}: {by_class[name]} hostile inputs: {detail}")
    if len(by_class) == 4:  # the whole module ran
        assert sum(by_class.values()) >= 350, by_class
        named = sum(v for k, v in COUNTS.items() if "named on read" in k)
        assert named >= 20, COUNTS  # tampering is really reached, not only refused by SQLite
