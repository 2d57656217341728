"""``nas-hw profile``: candidate table of a configured space, stored in the cache, warm reruns."""
import json
import os

import pytest

from nas_hw.app import profile
from nas_hw.app.pipeline import TABLE_BLOB, plan_search
from nas_hw.measure.store import LatencyCache
from nas_hw.nas.table import CandidateTable
from tests.conftest import compose

TINY = ["space=darts", "space.n_cells=1", "space.n_nodes=1", "space.reduction_cells=[]",
        "space.ops=[skip,max_pool_3x3,sep_conv_3x3]", "table.input_shape=[1,1,8,8]",
        "estimator.n_run=3", "estimator.n_warmup=0", "estimator.max_measure_execution_time=0.05",
        "progress=false"]


def _run(argv, capsys):
    code = profile.main(argv)
    out, err = capsys.readouterr()
    err = "\n".join(line for line in err.splitlines() if "[nnabla][INFO]" not in line)
    return code, out, err + ("\n" if err else "")


def _summary_value(out, key):
    line = next(line for line in out.splitlines() if line.startswith(key + ":"))
    return line.split(":", 1)[1].split()[0]


def test_profile_twice_takes_no_measurement_the_second_time(tmp_path, capsys):
    cache_path = str(tmp_path / "lat.sqlite")
    table_json = tmp_path / "table.json"
    argv = TINY + [f"cache.path={cache_path}", "--out", str(table_json)]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    # one normal cell, one node: 2 edges (choice points) x 3 ops
    assert _summary_value(out, "choice points") == "2"
    assert _summary_value(out, "candidates") == "6"
    first = int(_summary_value(out, "measurements taken"))
    assert first > 0
    assert "subnetwork latency: min" in out

    table = CandidateTable.load(str(table_json))
    assert table.input_shape == (1, 1, 8, 8)
    assert [len(c) for c in table.costs["latency"]] == [3, 3]
    assert table.candidate_names[0] == ["Identity", "MaxPool", "Sequential"]
    with LatencyCache(cache_path) as cache:
        assert len(cache) == first  # every measurement was stored
        stored = cache.get_blob(table.fingerprint, TABLE_BLOB, table.space_key)
    assert stored is not None
    assert CandidateTable.from_dict(stored).to_dict() == table.to_dict()
    assert stored["estimator"]["estimator"] == "LatencyGraphEstimator"

    code, out, err = _run(argv, capsys)
    assert code == 0, err
    assert _summary_value(out, "measurements taken") == "0"
    again = CandidateTable.load(str(table_json))
    assert again.space_key == table.space_key
    assert again.to_dict()["costs"] == table.to_dict()["costs"]  # same cached values
    summary_min = float(out.split("subnetwork latency: min ")[1].split()[0])
    assert summary_min == pytest.approx(table.min(), abs=1e-4)


def test_profile_module_estimator_and_default_cache(tmp_path, capsys, monkeypatch):
    # cache.path=null: the NAS_HW_CACHE file (set per test by conftest)
    code, out, err = _run(TINY + ["estimator=module"], capsys)
    assert code == 0, err
    assert int(_summary_value(out, "measurements taken")) > 0
    with LatencyCache(None) as cache:
        assert len(cache) > 0
        assert cache.path in out


def test_profile_result_api(tmp_path):
    cfg = compose(TINY + [f"cache.path={tmp_path / 'c.sqlite'}"], config_name="profile")
    result = profile.profile(cfg, progress=False)
    assert result.space == "DartsSpace"
    assert result.input_shape == (1, 1, 8, 8)
    t = result.table
    assert t.min() <= t.max()
    assert t.fixed["latency"] > 0
    for costs in t.costs["latency"]:  # skip (Identity) runs no function; pool and conv do
        assert costs[0] == 0.0
        assert costs[1] > 0 and costs[2] > 0
    assert "measurements taken: " in result.summary()


@pytest.mark.parametrize("override, expected", [
    ("device.ext_name=tpu", "device.ext_name must be one of"),
    ("table.input_shape=[1,3,8,8]", "has 3 channels, the data has 1"),
    ("space.ops=[conv_9x9]", "ops must be names from"),
    ("table.input_shape=[1,1,8]", "table.input_shape must be 4 positive ints"),
    ("latency.input_shape=[1,1,8,8]", "latency.input_shape was renamed: use table.input_shape"),
])
def test_profile_bad_config_fails_clearly(override, expected, tmp_path, capsys):
    code, out, err = _run(TINY + [f"cache.path={tmp_path / 'c.sqlite'}", override], capsys)
    assert code == 2
    assert err.startswith("nas-hw: error: ") and err.count("\n") == 1, err
    assert expected in err
    assert not (tmp_path / "c.sqlite").exists()  # nothing measured


@pytest.mark.parametrize("override", ["space=nope", "latency.wieght=0.1"])
def test_profile_bad_override_is_refused_by_hydra(override, tmp_path, capsys):
    code, out, err = _run(TINY + [f"cache.path={tmp_path / 'c.sqlite'}", override], capsys)
    assert code != 0 and override.split("=")[0].replace("space", "space/nope") in err.replace("'", "")
    assert not (tmp_path / "c.sqlite").exists()


def test_profile_missing_out_dir(tmp_path, capsys):
    code, out, err = _run(TINY + ["--out", str(tmp_path / "no" / "t.json")], capsys)
    assert code == 2 and "out=" in err and "does not exist" in err


def test_profile_table_json_is_valid_json(tmp_path, capsys):
    path = tmp_path / "t.json"
    code, out, err = _run(TINY + [f"cache.path={tmp_path / 'c.sqlite'}", "--out", str(path)], capsys)
    assert code == 0, err
    data = json.loads(path.read_text())
    assert data["unit"] == "m" and data["names"]


def test_bug_profile_and_search_measure_under_one_fingerprint_with_half(tmp_path, capsys):
    """Regression: with `device.type_config=half` the search measured its table at float under
    another fingerprint than `nas-hw profile` stored, because their set-up code had drifted."""
    overrides = TINY + ["device.type_config=half", f"cache.path={tmp_path / 'c.sqlite'}"]
    result = profile.profile(compose(overrides, config_name="profile"), progress=False)
    assert "|half|" in result.table.fingerprint
    p = plan_search(compose(overrides), str(tmp_path / "run"))
    try:
        assert p.setup.estimator.fingerprint_key == result.table.fingerprint
        assert p.setup.estimator.type_config == "half"
    finally:
        p.setup.cache.close()


def test_profile_writes_nothing_into_the_working_directory(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out, err = _run(TINY + [f"cache.path={tmp_path / 'c.sqlite'}"], capsys)
    assert code == 0, err
    assert os.listdir(work) == []  # no profile.log, no .hydra/, no outputs/


def test_profile_summary_says_what_is_flagged_or_refused():
    from nas_hw.app.profile import ProfileResult
    from nas_hw.estimators.calibration import fit_calibration
    from nas_hw.nas.table import CandidateTable

    table = CandidateTable({"latency": [[1.0, 2.0]], "n_layers": [[1, 1]]}, {"latency": 0.5, "n_layers": 1},
                           [0], ["cp"], [["a", "b"]], flagged=[{"where": "cp candidate a", "layer": "0:ReLU",
                                                                "signature": "fn:ReLU|inplace=False|in=1:float32"}])
    refused = fit_calibration([1.0, 2.0, 3.0], [5, 9, 7], [0.1, 0.2, 0.3], name="c")
    text = ProfileResult(table, 3, 0, "c.sqlite", (1, 1, 8, 8), "Space", refused).summary()
    assert "WARNING: 1 layer measurement(s) of the table are flagged disturbed" in text
    assert "REFUSED: " in text and "uncalibrated" in text
    assert "WARNING" not in ProfileResult(CandidateTable.from_dict(dict(table.to_dict(), flagged=[])), 3, 0,
                                          "c.sqlite", (1, 1, 8, 8), "Space").summary()
