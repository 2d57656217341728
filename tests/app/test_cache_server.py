"""The commands on a PostgreSQL server store: ``nas-hw cache ... --cache postgresql://...``,
``nas-hw cache copy`` between a file and the server, ``cache.url`` / ``NAS_HW_CACHE`` in a search,
and passwords kept out of every output, config, log and report."""
import json
import os
import subprocess
import sys

import pytest

from nas_hw.app.cli import main
from nas_hw.app.config import cache_location
from nas_hw.errors import ConfigInputError
from nas_hw.measure.store import LatencyCache, open_cache
from nas_hw.measure.timing import TimingStats
from tests.app.test_pipeline import TINY_OVERRIDES
from tests.conftest import REPO, compose


def stats(ms):
    s = ms * 1e-3
    return TimingStats(s, s, 0.0, s, 5, 5)


@pytest.fixture
def sqlite_file(tmp_path):
    path = str(tmp_path / "local.sqlite")
    with LatencyCache(path) as cache:
        for i in range(3):
            cache.put("cpu|chip", f"sig:{i}", stats(i + 1), fingerprint_info={"ext": "cpu"})
        cache.put("cuda|gpu", "sig:0", stats(0.5))
    return path


def no_password(pg_server, *texts):
    for text in texts:
        assert pg_server.password not in text


def test_every_cache_command_on_a_server_with_the_password_from_the_environment(
        pg_server, pg_url, sqlite_file, tmp_path, capsys, monkeypatch):
    url = pg_server.url(pg_url.rsplit("/", 1)[1], password=False)
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    assert main(["cache", "ls", "--cache", url]) == 0
    assert "no nas_hw store on that server yet" in capsys.readouterr().out
    assert not open_cache(url, readonly=True).exists  # ls created nothing
    assert main(["cache", "copy", sqlite_file, url]) == 0
    out = capsys.readouterr().out
    assert "copied 4 row(s)" in out and "4 added, it now holds 4 row(s) (was 0)" in out
    assert main(["cache", "copy", sqlite_file, url]) == 0
    assert "0 added" in capsys.readouterr().out  # rows the server holds are kept
    with open_cache(url) as s:
        assert s.fingerprint_info() == {"cpu|chip": {"ext": "cpu"}}  # the devices' descriptions travel
    assert main(["cache", "ls", "--cache", url]) == 0
    out = capsys.readouterr().out
    assert "4 row(s), 2 fingerprint(s)" in out and out.startswith(f"cache {url}:")
    export = tmp_path / "lut.csv"
    assert main(["cache", "export", str(export), "--cache", url, "--fingerprint", "cpu|chip"]) == 0
    assert "exported 3 row(s)" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache", url, "--fingerprint", "cpu|chip"]) == 2
    assert "without --yes" in capsys.readouterr().err
    assert main(["cache", "clear", "--cache", url, "--fingerprint", "cpu|chip", "--yes"]) == 0
    assert "deleted 3 row(s)" in capsys.readouterr().out
    assert main(["cache", "import", str(export), "--cache", url]) == 0
    assert "3 row(s) added" in capsys.readouterr().out
    back = str(tmp_path / "back.sqlite")
    assert main(["cache", "copy", url, back, "--fingerprint", "cpu|chip"]) == 0
    capsys.readouterr()
    with LatencyCache(sqlite_file) as a, LatencyCache(back) as b, open_cache(url) as s:
        assert [r.as_row() for r in b.records()] == [r.as_row() for r in a.records("cpu|chip")]
        assert [r.as_row() for r in s.records()] == [r.as_row() for r in a.records()]


def test_copy_overwrite_unknown_fingerprint_and_missing_source(pg_server, pg_url, sqlite_file, tmp_path, capsys):
    with open_cache(pg_url) as store:
        store.put("cpu|chip", "sig:0", stats(9.0))
    assert main(["cache", "copy", sqlite_file, pg_url, "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert "4 added or replaced" in out
    no_password(pg_server, out)
    with open_cache(pg_url) as store:
        assert store.get("cpu|chip", "sig:0").latency() == pytest.approx(1.0)
    assert main(["cache", "copy", sqlite_file, pg_url, "--fingerprint", "nope"]) == 2
    err = capsys.readouterr().err
    assert "fingerprint 'nope' has no rows" in err
    assert main(["cache", "copy", str(tmp_path / "missing.sqlite"), pg_url]) == 2
    assert "no cache file at" in capsys.readouterr().err
    assert main(["cache", "copy", pg_url, pg_url]) == 2
    err = capsys.readouterr().err
    assert "two different stores" in err
    no_password(pg_server, err)


@pytest.mark.parametrize("case", ["wrong password", "missing database", "closed port"])
def test_a_refused_connection_is_one_line_on_every_command(pg_server, pg_url, case, sqlite_file, capsys):
    from tests.pg_server import _free_port

    url = {"wrong password": pg_url.replace(pg_server.password, "wrong-secret"),
           "missing database": pg_server.url("absent_db"),
           "closed port": f"postgresql://nas_hw:{pg_server.password}@127.0.0.1:{_free_port()}/x"}[case]
    for argv in (["cache", "ls", "--cache", url], ["cache", "copy", sqlite_file, url]):
        assert main(argv) == 1
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nas-hw: error: cannot connect to the latency store")
        assert "wrong-secret" not in captured.err
        no_password(pg_server, captured.err, captured.out)


def test_cache_location_of_the_config():
    assert cache_location(compose(["cache.url=postgresql://team@db.example/nas_hw"]).cache) == \
        "postgresql://team@db.example/nas_hw"
    assert cache_location(compose([]).cache) is None
    for overrides, message in [
            (["cache.url=postgresql://team:s3cret@db/nas_hw"], "must not carry a password"),
            (["cache.url='postgresql://db/nas_hw?password=s3cret'"], "must not carry a password"),
            (["cache.url=/tmp/x.sqlite"], "must be a postgresql:// URL"),
            (["cache.path=postgresql://db/nas_hw"], "give it as cache.url"),
            (["cache.path=/tmp/x.sqlite", "cache.url=postgresql://db/nas_hw"], "give one")]:
        with pytest.raises(ConfigInputError, match=message) as err:
            cache_location(compose(overrides).cache)
        assert "s3cret" not in str(err.value)


def test_a_password_on_the_command_line_is_refused_before_any_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "nas_hw.app.cli", "search",
                           "cache.url=postgresql://team:s3cret@127.0.0.1:1/nas_hw", f"hydra.run.dir={run_dir}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in done.stderr.strip().splitlines() if "[nnabla]" not in ln]
    assert done.returncode == 2 and len(lines) == 1 and "PGPASSWORD" in lines[0], done.stderr
    assert "s3cret" not in done.stderr + done.stdout
    assert not run_dir.exists()


def test_a_search_on_the_server_keeps_the_password_out_of_report_logs_and_configs(pg_server, pg_url, tmp_path):
    """`nas-hw search` with NAS_HW_CACHE=postgresql://user:password@...: the measurements land on
    the server, and no file of the run, nor the console, holds the password."""
    run_dir = tmp_path / "run"
    env = dict(os.environ, NAS_HW_CACHE=pg_url)
    done = subprocess.run([sys.executable, "-m", "nas_hw.app.cli", "search", *TINY_OVERRIDES,
                           "retrain.epochs=0", f"hydra.run.dir={run_dir}", "hydra.verbose=true"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["cache_path"] == pg_url.replace(pg_server.password, "***")
    with open_cache(pg_url) as store:
        assert len(store) > 0  # the table's layers were measured into the server
    written = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "search.log" for p in written) and any(p.name == "config.yaml" for p in written)
    for path in written:
        assert pg_server.password.encode() not in path.read_bytes(), path
    no_password(pg_server, done.stdout, done.stderr)


def test_a_password_in_a_yaml_config_is_refused_before_any_run_directory(tmp_path):
    """A config file of the user's own that sets cache.url with a password: the start-up checks
    (run by the CheckFirst callback before Hydra writes anything) refuse it in one line."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "team.yaml").write_text(
        "defaults:\n  - config\n  - _self_\ncache:\n  url: postgresql://team:s3cret@127.0.0.1:1/nas_hw\n")
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "nas_hw.app.cli", "search", "--config-dir", str(tmp_path / "conf"),
                           "--config-name", "team", f"hydra.run.dir={run_dir}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in done.stderr.strip().splitlines() if "[nnabla]" not in ln]
    assert done.returncode == 2 and len(lines) == 1 and "must not carry a password" in lines[0], done.stderr
    assert "s3cret" not in done.stderr + done.stdout
    assert not run_dir.exists()
