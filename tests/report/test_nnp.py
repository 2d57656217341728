"""Hostile ``.nnp`` files (issue 16, class 1): archive bombs, lying headers, huge member counts,
nested archives, pathological definitions and networks too big to build. Every archive is
generated here (tests/report/zipforge.py); the bombs run ``nas-hw report`` in a child process
under an address-space limit, which proves the memory bound. Counts and the measured memory
are printed at the end of the session (tests/conftest.py ``summary``)."""
import collections
import json
import os
import subprocess
import sys
import zipfile
from collections import OrderedDict

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas_hw.app import cli
from nas_hw.errors import NetworkInputError
from nas_hw.report import load_network
from nas_hw.report.nnp import NnpLimits

from tests.conftest import REPO, summary

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import zipforge as zf  # noqa: E402

CHILD = os.path.join(HERE, "bounded_child.py")
FAST = ["--n-run", "2", "--n-warmup", "0", "--max-measure-execution-time", "0.05", "--no-plot",
        "--no-progress"]
GiB = 2**30
#: Address space the child may add after its imports: far below any bomb, far above the report.
HEADROOM = 384 * 2**20
OUTCOMES = collections.Counter()
MEMORY = {}


@pytest.fixture(scope="module")
def network_text(tmp_path_factory):
    """The network.nntxt of a small conv network saved by nnabla itself."""
    from nnabla.utils.save import save

    path = str(tmp_path_factory.mktemp("nnp") / "small.nnp")
    with nn.parameter_scope("", scope=OrderedDict()):
        x = nn.Variable((1, 3, 8, 8))
        y = PF.affine(F.relu(PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c1")), 5, name="fc")
        save(path, {"networks": [{"name": "small", "batch_size": 1, "outputs": {"y": y}, "names": {"x": x}}],
                    "executors": [{"name": "runtime", "network": "small", "data": ["x"], "output": ["y"]}]})
    with zipfile.ZipFile(path) as z:
        return z.read("network.nntxt")


def bounded_report(path, *args, tmp_path):
    """``nas-hw report path`` in a child under RLIMIT_AS; returns its JSON record."""
    env = dict(os.environ, PYTHONPATH=REPO, MALLOC_ARENA_MAX="2")
    proc = subprocess.run([sys.executable, CHILD, str(HEADROOM), str(path), "--out", str(tmp_path / "out"),
                           *FAST, *args], capture_output=True, text=True, timeout=300, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def one_line_error(record, *expected):
    assert record["code"] == 2, record
    err = record["stderr"]
    assert err.startswith("nas-hw: error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err
    return err


def remember(kind, record):
    grown = record["rss_peak"] - record["rss_before"]
    MEMORY[kind] = (record["rss_peak"], grown)
    OUTCOMES[f"bounded/{kind}"] += 1
    assert grown < HEADROOM


# -- bombs under a memory limit --------------------------------------------------------------
def test_a_1_gib_bomb_is_refused_before_it_is_read(tmp_path):
    path = zf.write_zip(tmp_path / "bomb.nnp", [zf.stored("nnp_version.txt", b"0.1\n"),
                                                 zf.bomb("network.nntxt", GiB)])
    assert os.path.getsize(path) < 1.1 * 2**20  # a 1 MB file
    record = bounded_report(path, tmp_path=tmp_path)
    one_line_error(record, "'network.nntxt'", "1073741824 bytes", "max_bytes", "--max-nnp-bytes")
    remember("1GiB-bomb", record)


def test_a_header_that_understates_a_1_gib_member_cannot_make_the_read_grow(tmp_path):
    member = zf.bomb("network.nntxt", GiB, declared_size=1000)
    path = zf.write_zip(tmp_path / "liar.nnp", [member])
    record = bounded_report(path, tmp_path=tmp_path)
    one_line_error(record, "'network.nntxt'", "cannot be decompressed", "CRC")
    remember("lying-header", record)


def test_parameter_and_nested_archive_bombs_are_never_decompressed(tmp_path, network_text):
    """Only the definition is read: 1 GiB parameter members and a nested .nnp bomb cost nothing,
    and the report runs."""
    inner = zf.write_zip(tmp_path / "inner.nnp", [zf.bomb("network.nntxt", GiB)])
    path = zf.write_zip(tmp_path / "params.nnp", [
        zf.deflated("network.nntxt", network_text), zf.bomb("parameter.h5", GiB),
        zf.bomb("parameter.protobuf", GiB), zf.stored("inner.nnp", inner.read_bytes()),
        zf.bomb("net_Momentum_optimizer.h5.optimizer", GiB)])
    record = bounded_report(path, tmp_path=tmp_path)
    assert record["code"] == 0, record["stderr"]
    assert (tmp_path / "out" / "report.json").exists()
    remember("parameter-bombs", record)


# -- the archive's directory ------------------------------------------------------------------
def test_100k_members_are_refused_before_the_directory_is_parsed(tmp_path, network_text):
    members = [zf.deflated("network.nntxt", network_text)] + [zf.stored(f"m{i}", b"") for i in range(100_000)]
    path = zf.write_zip(tmp_path / "many.nnp", members)
    record = bounded_report(path, tmp_path=tmp_path)
    one_line_error(record, "max_members=1000")
    remember("100k-members", record)


@pytest.mark.parametrize("declared", [3, 0])
def test_an_end_record_that_understates_the_member_count_is_caught(tmp_path, network_text, declared):
    members = [zf.deflated("network.nntxt", network_text)] + [zf.stored(f"m{i}", b"") for i in range(5000)]
    path = zf.write_zip(tmp_path / "count.nnp", members, declared_entries=declared)
    with pytest.raises(NetworkInputError, match="max_members=1000"):
        load_network(str(path))
    OUTCOMES["refused/understated-count"] += 1


# -- the definition and the network ----------------------------------------------------------
def _declared_net(shape="dim: 100000 dim: 100000", repeat=""):
    return (f'network {{ name: "huge" batch_size: 1 {repeat}\n'
            f'variable {{ name: "x" type: "Buffer" shape {{ dim: -1 dim: 4 }} }}\n'
            f'variable {{ name: "W" type: "Parameter" shape {{ {shape} }} }}\n'
            'variable { name: "y" type: "Buffer" shape { dim: -1 dim: 4 } }\n'
            'function { name: "f" type: "ReLU" input: "x" output: "y" }\n}\n').encode()


CASES = {
    # name: (members, what the one line must say)
    "ratio": (lambda t: [zf.bomb("network.nntxt", 4 * 2**20)], "compression ratio"),
    "deep-nesting": (lambda t: [zf.stored("network.nntxt", b"network { " * 200_000)], "not a valid nnabla network"),
    "binary-definition": (lambda t: [zf.stored("network.nntxt", bytes(range(256)) * 40)], "not UTF-8"),
    "garbage-definition": (lambda t: [zf.stored("net.prototxt", b"}}}{{{\x01")], "not a valid nnabla network"),
    "huge-parameter-shape": (lambda t: [zf.stored("network.nntxt", _declared_net())], "max_network_bytes"),
    "negative-dimension": (lambda t: [zf.stored("network.nntxt", _declared_net("dim: -7"))], "only -1"),
    "billion-repeats": (lambda t: [zf.stored("network.nntxt", _declared_net(
        "dim: 4", 'repeat_info { id: "r" times: 1000000000 }').replace(
        b'type: "ReLU"', b'type: "ReLU" repeat_id: "r"'))], "max_graph_nodes"),
    "encrypted": (lambda t: [zf.stored("network.nntxt", t, flags=0x1)], "encrypted"),
    "duplicate-member": (lambda t: [zf.stored("network.nntxt", t), zf.stored("network.nntxt", t)], "twice"),
    "unknown-compression": (lambda t: [zf.Member("network.nntxt", t, len(t), 0, method=77)], "cannot be decompressed"),
    "overstated-size": (lambda t: [zf.stored("network.nntxt", t, declared_size=len(t) + 10)], "network.nntxt"),
    "truncated-stream": (lambda t: [zf.Member("network.nntxt", zf.deflated("n", t).stream[:20], len(t),
                                              zf.deflated("n", t).crc)], "cannot be decompressed"),
    "no-definition": (lambda t: [zf.stored("parameter.protobuf", t)], "no network definition"),
    "no-network": (lambda t: [zf.stored("network.nntxt", b"")], "holds no network"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_members_end_in_one_line(case, tmp_path, network_text, capsys):
    make, expected = CASES[case]
    path = zf.write_zip(tmp_path / f"{case}.nnp", make(network_text))
    code = cli.main(["report", str(path), "--out", str(tmp_path / "out")] + FAST)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nas-hw: error: ") and err.count("\n") == 1, err
    assert expected in err and str(path) in err, err
    assert not (tmp_path / "out").exists()
    OUTCOMES[f"refused/{case}"] += 1


def test_a_huge_batch_is_checked_before_the_network_is_rebuilt(tmp_path, network_text):
    path = zf.write_zip(tmp_path / "small.nnp", [zf.deflated("network.nntxt", network_text)])
    assert load_network(str(path), (2, 3, 8, 8)).output.shape == (2, 5)
    with pytest.raises(NetworkInputError, match="max_network_bytes.*--max-network-bytes"):
        load_network(str(path), (10**9, 3, 8, 8))
    OUTCOMES["refused/huge-batch"] += 1


@pytest.mark.parametrize("flag, value, expected", [
    ("--max-nnp-bytes", "1K", "--max-nnp-bytes"), ("--max-network-bytes", "1K", "--max-network-bytes"),
    ("--max-nnp-bytes", "0", "byte count"), ("--max-network-bytes", "lots", "byte count"),
])
def test_the_limits_are_options(flag, value, expected, tmp_path, network_text, capsys):
    path = zf.write_zip(tmp_path / "small.nnp", [zf.stored("network.nntxt", network_text)])
    code = cli.main(["report", str(path), "--out", str(tmp_path / "out"), flag, value] + FAST)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    OUTCOMES[f"refused/option{flag}"] += 1


def test_raised_limits_let_a_bigger_network_through(tmp_path, network_text, capsys):
    path = zf.write_zip(tmp_path / "small.nnp", [zf.stored("network.nntxt", network_text)])
    assert cli.main(["report", str(path), "--out", str(tmp_path / "out"), "--max-nnp-bytes", "64M",
                     "--max-network-bytes", "2G"] + FAST) == 0, capsys.readouterr().err


# -- generated archives ----------------------------------------------------------------------
SMALL = NnpLimits(max_bytes=64 * 2**10, max_members=16, max_ratio=50, max_network_bytes=2**20, max_graph_nodes=64)
FEATURES = ["valid", "bomb", "liar_small", "liar_large", "bad_crc", "many", "count_lie", "garbage",
            "truncated", "nested", "huge_shape", "repeats", "param_bomb", "odd_name", "empty"]


@st.composite
def hostile_archive(draw):
    """A list of members and end-record lies, drawn from the hostile features."""
    features = draw(st.lists(st.sampled_from(FEATURES), min_size=1, max_size=4, unique=True))
    return features, draw(st.binary(max_size=200)), draw(st.integers(1, 8))


def _members(features, junk, k, text):
    members = []
    for f in features:
        if f == "valid":
            members.append(zf.deflated("network.nntxt", text))
        elif f == "bomb":
            members.append(zf.bomb(f"b{k}.nntxt", k * 2**20))
        elif f == "liar_small":
            members.append(zf.bomb(f"l{k}.prototxt", k * 2**20, declared_size=k * 100))
        elif f == "liar_large":
            members.append(zf.stored(f"g{k}.nntxt", text, declared_size=len(text) * k * 1000))
        elif f == "bad_crc":
            members.append(zf.deflated("c.nntxt", text, declared_crc=k))
        elif f == "many":
            members.extend(zf.stored(f"m{i}.txt", b"") for i in range(20 * k))
        elif f == "garbage":
            members.append(zf.stored(f"junk{k}.nntxt", junk))
        elif f == "truncated":
            full = zf.deflated("t.nntxt", text)
            members.append(zf.Member("t.nntxt", full.stream[:k * 3], full.size, full.crc))
        elif f == "nested":
            members.append(zf.stored("inner.nnp", zf.bomb("network.nntxt", 8 * 2**20).stream))
        elif f == "huge_shape":
            members.append(zf.stored("h.nntxt", _declared_net(f"dim: {10**k} dim: {10**k}")))
        elif f == "repeats":
            members.append(zf.stored("r.nntxt", _declared_net("dim: 4", f'repeat_info {{ id: "r" times: {10**k} }}')
                                     .replace(b'type: "ReLU"', b'type: "ReLU" repeat_id: "r"')))
        elif f == "param_bomb":
            members.append(zf.bomb("parameter.h5", 16 * 2**20))
        elif f == "odd_name":
            members.append(zf.stored("../\u202e\x00..nntxt"[: k + 8], junk))
        elif f == "empty":
            members.append(zf.stored("e.nntxt", b""))
    return members


@settings(derandomize=True, deadline=None, database=None, max_examples=60,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=hostile_archive())
def test_generated_hostile_archives_load_or_end_in_one_line(case, tmp_path, network_text):
    features, junk, k = case
    path = str(tmp_path / "gen.nnp")
    zf.write_zip(path, _members(features, junk, k, network_text),
                 declared_entries=1 if "count_lie" in features else None)
    try:
        net = load_network(path, limits=SMALL)
    except NetworkInputError as err:
        message = str(err)
        assert "\n" not in message.strip() and repr(path) in message, message
        OUTCOMES["generated/refused"] += 1
        return
    assert isinstance(net.output, nn.Variable) and net.output.shape in ((1, 5), (1, 4))
    OUTCOMES["generated/loaded"] += 1


# -- module:function specs -------------------------------------------------------------------
UNIMPORTABLE = st.text(min_size=1, max_size=12).filter(
    lambda m: not all(part.isidentifier() for part in m.split(".")))


@settings(derandomize=True, deadline=None, database=None, max_examples=40,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=st.tuples(UNIMPORTABLE, st.text(max_size=12)).map(":".join))
def test_odd_module_function_specs_end_in_one_line(spec, tmp_path, monkeypatch):
    """Module names no import can satisfy (user code is never run by chance here)."""
    monkeypatch.chdir(tmp_path)
    if os.path.exists(spec):
        return
    with pytest.raises(NetworkInputError):
        load_network(spec)
    OUTCOMES["function-spec/generated"] += 1


@pytest.mark.parametrize("spec, expected", [
    ("sys:exit", "raised SystemExit"), ("os:sep", "is not a function"),
    ("builtins:print", "returned NoneType"), ("math:sqrt", "raised TypeError"),
    ("json:loads", "raised TypeError"), ("os.path:nonexistent_fn", "has no function"),
    ("nas_hw_missing_module_x:f", "cannot import module"),
])
def test_module_functions_that_misbehave_end_in_one_line(spec, expected, tmp_path, capsys):
    code = cli.main(["report", spec, "--out", str(tmp_path / "out")] + FAST)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nas-hw: error: ") and err.count("\n") == 1, err
    assert expected in err, err
    OUTCOMES["function-spec/misbehaving"] += 1


def test_nnp_report():
    total = sum(OUTCOMES.values())
    summary(f"\n[hostile .nnp] {total} hostile inputs: {dict(sorted(OUTCOMES.items()))}")
    for kind, (peak, grown) in sorted(MEMORY.items()):
        summary(f"[hostile .nnp] {kind}: peak RSS {peak / 2**20:.0f} MiB "
                f"({grown / 2**20:+.0f} MiB over the process after its imports)")
