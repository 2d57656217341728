"""Tampered resume checkpoints (issue 16, class 7): ``search.resume=<dir>`` reads a checkpoint as
untrusted input. Every tampered copy of a real checkpoint (built here from the default config,
nothing measured) must end in one line naming ``resume`` and the file, before anything is
measured or trained; an intact one, or one reached through a symlink, resumes. Counts are printed
at the end of the session (tests/conftest.py ``summary``)."""
import collections
import json
import math
import os
import shutil
import warnings
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nas_hw.nas.table as table_module
from nas_hw.app import pipeline
from nas_hw.app.guard import check_search
from nas_hw.errors import ConfigInputError
from nas_hw.search.checkpoint import CHECKPOINT_STATE, PARAMS_FILE, SOLVER_FILES, load_checkpoint
from nas_hw.search.loop import Searcher

from tests.conftest import compose, summary

OUTCOMES = collections.Counter()
STATE_FIELDS = ("algorithm", "epoch", "warmup_epoch", "arch_step", "history", "callbacks", "rng",
                "mixedop_rngs", "extra")


class LongWork(BaseException):
    pass


@pytest.fixture
def no_long_work(monkeypatch):
    def forbidden(*args, **kwargs):
        raise LongWork("a tampered checkpoint got past the start-up checks")

    monkeypatch.setattr(table_module.CandidateTable, "build", classmethod(forbidden))
    monkeypatch.setattr(Searcher, "run", forbidden)
    return monkeypatch


def _config(search, cache, resume=None):
    overrides = [f"search={search}", f"cache.path={cache}", "retrain=none"]
    return compose(overrides + ([f"search.resume='{resume}'"] if resume else []))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A real checkpoint of the default config's model, per algorithm (no step was taken)."""
    root = tmp_path_factory.mktemp("checkpoints")
    made = {}
    for search in ("darts", "proxyless"):
        plan = pipeline.plan_search(_config(search, root / "c.sqlite"), str(root / search))
        plan.setup.cache.close()
        plan.searcher.history = [{"epoch": 0, "valid_acc": 0.5}]
        plan.searcher.save_checkpoint(str(root / search / "checkpoint"))
        made[search] = root / search
    return made


def _params(directory):
    with np.load(directory / PARAMS_FILE) as z:
        return {k: z[k] for k in z.files}


def _alpha_key(params):
    return next(k for k in params if k.endswith("_alpha"))


# -- the tampering -----------------------------------------------------------------------------
def tamper_state(d, draw):
    path = d / CHECKPOINT_STATE
    state = json.loads(path.read_text())
    how = draw(st.sampled_from(["field", "missing", "truncate", "not_json", "deep", "huge", "rng_key",
                                "rng_length", "history", "callbacks", "top_level"]))
    if how == "field":
        field = draw(st.sampled_from(["epoch", "warmup_epoch", "arch_step", "algorithm", "history",
                                      "callbacks", "rng", "mixedop_rngs", "extra"]))
        state[field] = draw(st.one_of(st.just(-1), st.just(10**30), st.just("zz"), st.just(True), st.just(1.5),
                                      st.just(None), st.just([1]), st.just({"a": 1})).filter(
            lambda v: not (field == "extra" and isinstance(v, dict))))
    elif how == "missing":
        del state[draw(st.sampled_from(STATE_FIELDS))]
    elif how == "rng_key":
        state["rng"][1][draw(st.integers(0, 623))] = draw(st.sampled_from([-1, 2**32, "k", 0.5]))
    elif how == "rng_length":
        state["mixedop_rngs"] = state["mixedop_rngs"][:-1]
    elif how == "history":
        state["history"] = draw(st.sampled_from([{"a": 1}, [1, 2], "h", [[]]]))
    elif how == "callbacks":
        state["callbacks"] = {"checkpoint": draw(st.sampled_from([{"best_score": "x", "best": None},
                                                                 {"best_score": 0.5, "best": [1]}, 5,
                                                                 {"best_score": math.inf, "best": None}]))}
    elif how == "top_level":
        path.write_text(json.dumps([state]))
        return CHECKPOINT_STATE
    if how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[:draw(st.integers(0, len(data) - 1))])
    elif how == "not_json":
        path.write_bytes(draw(st.binary(min_size=1, max_size=64)).replace(b"{", b"(") + b"\xff")
    elif how == "deep":
        path.write_text("[" * 200_000 + "]" * 200_000)
    elif how == "huge":
        with open(path, "ab") as fh:
            fh.truncate(65 * 2**20)  # sparse: past the 64 MiB bound
    else:
        path.write_text(json.dumps(state).replace("Infinity", "1e999"))
    return CHECKPOINT_STATE


def tamper_params(d, draw):
    path = d / PARAMS_FILE
    params = _params(d)
    alpha = _alpha_key(params)
    how = draw(st.sampled_from(["nan", "inf", "shape", "dtype", "missing", "extra", "truncate", "not_zip",
                                "header_lie", "bomb", "object", "duplicate"]))
    if how in ("nan", "inf"):
        params[alpha] = params[alpha].copy()
        params[alpha].flat[0] = np.nan if how == "nan" else -np.inf
    elif how == "shape":
        params[alpha] = np.zeros(params[alpha].size + 1, dtype=np.float32)
    elif how == "dtype":
        params[alpha] = params[alpha].astype(np.int64)
    elif how == "object":
        params[alpha] = np.array([None] * params[alpha].size, dtype=object).reshape(params[alpha].shape)
    elif how == "missing":
        del params[alpha]
    elif how == "extra":
        params["zz/unexpected"] = np.zeros(3, dtype=np.float32)
    if how in ("nan", "inf", "shape", "dtype", "missing", "extra", "object"):
        np.savez(path, **params)  # (an object array is pickled: refused from its header, never unpickled)
    elif how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[:draw(st.integers(0, len(data) - 1))])
    elif how == "not_zip":
        path.write_bytes(b"not a zip " + draw(st.binary(max_size=64)))
    elif how == "header_lie":  # the header promises more than the data holds
        with zipfile.ZipFile(path, "w") as z:
            for k, v in params.items():
                data = np.lib.format.header_data_from_array_1_0(v)
                with z.open(f"{k}.npy", "w") as f:
                    np.lib.format.write_array_header_1_0(f, data)
                    f.write(v.tobytes()[: max(v.nbytes - 4, 0)] if k == alpha else v.tobytes())
    elif how == "bomb":  # a member inflating far past what its array can need
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for k, v in params.items():
                with z.open(f"{k}.npy", "w") as f:
                    np.lib.format.write_array(f, v)
                    if k == alpha:
                        f.write(b"\0" * (32 * 2**20))
    else:  # duplicate member
        with warnings.catch_warnings(), zipfile.ZipFile(path, "a") as z:
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate it is told to write
            z.writestr(f"{alpha}.npy", b"x")
    return PARAMS_FILE


def tamper_solver(d, draw):
    name = draw(st.sampled_from(sorted(SOLVER_FILES.values())))
    path = d / name
    how = draw(st.sampled_from(["garbage", "shape", "nan", "missing", "extra", "external"]))
    if how == "garbage":
        path.write_bytes(b"\x89HDF\r\n" + draw(st.binary(max_size=64)))
        return name
    with h5py.File(path, "a") as h5:
        states = []
        h5.visititems(lambda k, o: states.append(k) if isinstance(o, h5py.Dataset) and not k.endswith("/t") else None)
        key = states[draw(st.integers(0, len(states) - 1))]
        if how == "shape":
            del h5[key]
            h5[key] = np.zeros(7, dtype=np.float32)
        elif how == "nan":
            h5[key][...] = np.nan
        elif how == "missing":
            del h5[key.rpartition("/")[0]]
        elif how == "extra":
            h5["zz/unexpected/m"] = np.zeros(3, dtype=np.float32)
        else:
            shape = h5[key].shape
            del h5[key]
            h5.create_dataset(key, shape=shape, dtype=np.float32,
                              external=[("/dev/zero", 0, int(np.prod(shape)) * 4)])
    return name


def tamper_files(d, draw):
    name = draw(st.sampled_from([CHECKPOINT_STATE, PARAMS_FILE, *SOLVER_FILES.values()]))
    path = d / name
    how = draw(st.sampled_from(["directory", "dev_zero", "fifo", "missing", "dangling"]))
    path.unlink()
    if how == "directory":
        path.mkdir()
    elif how == "dev_zero":
        path.symlink_to("/dev/zero")
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "dangling":
        path.symlink_to(d / "nowhere")
    return name if name != CHECKPOINT_STATE else "checkpoint"


TAMPERS = {"state": tamper_state, "params": tamper_params, "solver": tamper_solver, "files": tamper_files}


@pytest.mark.parametrize("kind", sorted(TAMPERS))
@settings(derandomize=True, deadline=None, database=None, max_examples=8,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_tampered_checkpoints_end_in_one_line_before_any_long_work(kind, data, checkpoints, no_long_work,
                                                                    tmp_path_factory):
    search = data.draw(st.sampled_from(["darts", "proxyless"]))
    d = tmp_path_factory.mktemp("tampered") / "checkpoint"
    shutil.copytree(checkpoints[search] / "checkpoint", d)
    named = TAMPERS[kind](d, data.draw)
    with pytest.raises((ConfigInputError, FileNotFoundError)) as err:
        check_search(_config(search, d.parent / "c.sqlite", resume=d))
    message = str(err.value)
    assert "resume" in message and named in message and "\n" not in message, message
    OUTCOMES[f"tampered/{kind}"] += 1


def test_a_proxyless_baseline_that_is_not_a_number_is_refused(checkpoints, no_long_work, tmp_path):
    d = tmp_path / "checkpoint"
    shutil.copytree(checkpoints["proxyless"] / "checkpoint", d)
    state = json.loads((d / CHECKPOINT_STATE).read_text())
    state["extra"]["baseline"] = "high"
    (d / CHECKPOINT_STATE).write_text(json.dumps(state))
    with pytest.raises(ConfigInputError, match="resume=.*state.json field 'extra'.*baseline"):
        check_search(_config("proxyless", tmp_path / "c.sqlite", resume=d))
    OUTCOMES["tampered/baseline"] += 1


@pytest.mark.parametrize("search", ["darts", "proxyless"])
def test_an_intact_checkpoint_and_one_behind_symlinks_resume(search, checkpoints, no_long_work, tmp_path):
    """The checks can pass: a checkpoint whose files are symlinks to an intact one resumes."""
    linked = tmp_path / "linked"
    linked.mkdir()
    for f in os.listdir(checkpoints[search] / "checkpoint"):
        (linked / f).symlink_to(checkpoints[search] / "checkpoint" / f)
    plan = pipeline.plan_search(_config(search, tmp_path / "c.sqlite", resume=linked), str(tmp_path / "run"))
    plan.setup.cache.close()
    assert plan.searcher.history == [{"epoch": 0, "valid_acc": 0.5}]
    assert not (tmp_path / "run").exists()  # planning writes nothing
    OUTCOMES["intact/resumed"] += 1


def test_a_checkpoint_of_another_model_names_the_parameters(checkpoints, no_long_work, tmp_path):
    plan = pipeline.plan_search(compose([f"cache.path={tmp_path / 'c.sqlite'}", "space.stem_channels=4"]),
                                str(tmp_path / "run"))
    plan.setup.cache.close()
    with pytest.raises(ValueError, match=r"params\.npz.*(does not match|holds a float32 array of shape)"):
        load_checkpoint(plan.searcher, str(checkpoints["darts"]))
    OUTCOMES["tampered/other-model"] += 1


def test_a_tampered_checkpoint_on_the_command_line_leaves_nothing(checkpoints, no_long_work, tmp_path, capsys,
                                                                  monkeypatch):
    from nas_hw.app import search

    d = tmp_path / "checkpoint"
    shutil.copytree(checkpoints["darts"] / "checkpoint", d)
    params = _params(d)
    params[_alpha_key(params)][...] = np.nan  # NaN alphas
    np.savez(d / PARAMS_FILE, **params)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    code = search.main([f"search.resume={d}", f"cache.path={tmp_path / 'c.sqlite'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nas-hw: error: search.resume=") and err.count("\n") == 1, err
    assert "NaN" in err and not os.listdir(cwd)
    OUTCOMES["tampered/cli"] += 1


def test_checkpoint_report():
    summary(f"\n[tampered checkpoints] {sum(OUTCOMES.values())} cases: {dict(sorted(OUTCOMES.items()))}")
