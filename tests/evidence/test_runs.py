"""Tests of nas_hw.evidence.runs: reading hand-made sweep directories back."""
import json
import os

import pytest

from nas_hw.errors import UsageError
from nas_hw.evidence.runs import load_runs, sweep_commands
from tests.evidence.fake_sweep import make_sweep, write_run


def test_every_run_is_read_with_its_method_setting_and_task(tmp_path):
    dirs = make_sweep(str(tmp_path))
    runs = load_runs(dirs)
    assert len(runs) == 10 + 20 + 10
    assert [r.method for r in runs[:10]] == ["search"] * 10 and runs[10].method == "random"
    assert {r.setting for r in runs} == {"darts latency=none", "darts latency.weight=0.5", "random",
                                         "uniform ir_k3_e1", "uniform ir_k5_e3"}
    (task,) = {r.task for r in runs}
    assert task.startswith("digits / MobileNetSpace / 1x1x8x8 / settings ")
    assert runs[0].name == os.path.join("search", "0") and runs[0].weight == 0.0
    rnd = [r.name for r in runs if r.method == "random" and r.seed == 2]
    assert rnd == ["random/8", "random/9", "random/10", "random/11"]  # natural order
    # the same network in two runs has one architecture key
    assert len({r.architecture for r in runs if r.setting == "uniform ir_k5_e3"}) == 1


def test_a_reference_subrun_and_a_directory_given_twice_are_not_runs(tmp_path):
    write_run(str(tmp_path / "s" / "0"), seed=0, choices=[0, 0], test_acc=0.5, weight=0.1)
    write_run(str(tmp_path / "s" / "0" / "reference"), seed=0, choices=[1, 1], test_acc=0.6)
    runs = load_runs([str(tmp_path / "s"), str(tmp_path / "s")])
    assert [r.name for r in runs] == ["s/0"]


def test_commands_come_from_multirun_yaml_and_are_shell_quoted(tmp_path):
    make_sweep(str(tmp_path))
    commands = sweep_commands([str(tmp_path)])
    assert [os.path.basename(c["dir"]) for c in commands] == ["random", "search", "uniform"]
    assert commands[0]["command"] == ("nas-hw search -m search=random 'search.draw=range(0,4)' latency=none "
                                      "seed=0,1,2,3,4")


def test_bad_directories_and_reports_are_one_line_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_runs([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no report.json under"):
        load_runs([str(tmp_path / "empty")])
    bad = tmp_path / "bad" / "0"
    bad.mkdir(parents=True)
    (bad / "report.json").write_text(json.dumps({"seed": 0}))
    with pytest.raises(UsageError, match=r"lacks \['choices', 'deploy_input_shape', 'test_acc'\]"):
        load_runs([str(tmp_path / "bad")])
    (bad / "report.json").write_text("{not json")
    with pytest.raises(UsageError, match="not a readable report.json"):
        load_runs([str(tmp_path / "bad")])


def test_runs_of_other_data_space_or_retraining_settings_are_other_tasks(tmp_path):
    import yaml

    dirs = make_sweep(str(tmp_path))
    other = os.path.join(dirs[2], "0", ".hydra", "config.yaml")
    cfg = yaml.safe_load(open(other))
    cfg["retrain"] = {"epochs": 3}
    yaml.safe_dump(cfg, open(other, "w"))
    runs = load_runs(dirs)
    assert len({r.task for r in runs}) == 2
    changed = [r for r in runs if r.run_dir.endswith(os.path.join("uniform", "0"))][0]
    assert sum(r.task == changed.task for r in runs) == 1
