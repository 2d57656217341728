"""``nas-hw cache verify``: re-measure stored rows, drift per row and device, ``--refresh``."""
import io
from dataclasses import replace

import nnabla as nn
import nnabla.functions as F
import pytest

from nas_hw import LatencyCache
from nas_hw.app import verify
from nas_hw.app.cli import build_parser, main
from nas_hw.estimators.graph import LatencyGraphEstimator
from nas_hw.estimators.module import LatencyEstimator
from nas_hw.measure.timing import TimingStats

KW = dict(ext_name="cpu", device_id=0, n_run=4, n_warmup=1, max_measure_execution_time=0.5)


def _fill(cache):
    """Real rows of this device (3 functions, one module, a no-op) and one row of another device."""
    from nnabla_nas.module import Conv, Identity, Sequential

    x = nn.Variable((1, 4, 8, 8))
    y = F.relu(F.depthwise_convolution(x, nn.Variable((4, 3, 3), need_grad=True), pad=(1, 1)))
    y = F.add2(y, x)
    est = LatencyGraphEstimator(cache=cache, **KW)
    est.get_estimation(y, inputs=[x])
    net = Sequential(Conv(4, 4, (1, 1)), Identity())
    net.apply(training=False)
    net(nn.Variable((1, 4, 8, 8)))
    LatencyEstimator(cache=cache, **KW).get_estimation(net)
    cache.put("cpu|another-chip", "fn:ReLU|inplace=False|in=1x4x8x8:float32", TimingStats(1e-5, 1e-5, 0, 1e-5, 1, 1))
    return est.fingerprint_key


def _args(*argv):
    return build_parser().parse_args(["cache", "verify", "--cache", "unused"] + list(argv))


def test_verify_remeasures_function_rows_and_skips_what_it_cannot(tmp_path):
    cache = LatencyCache(str(tmp_path / "c.sqlite"))
    here = _fill(cache)
    out = io.StringIO()
    result = verify.run_verify(cache, _args("--all"), out)
    text = out.getvalue()
    fn_rows = [r for r in cache.records(here) if r.signature.startswith("fn:") and not r.noop]
    assert len(result["rows"]) == len(fn_rows) == 3 and not any("error" in r for r in result["rows"])
    assert all(r["drift"] is not None and r["now_s"] > 0 and not r["replaced"] for r in result["rows"])
    skipped = " ".join(result["skipped"])
    assert "another device" in skipped and "mod: rows" in skipped and "cannot be rebuilt" in skipped
    assert "no-op" in skipped
    summary = result["fingerprints"][here]
    assert summary["rows"] == 3 and f"fingerprint {here}: 3 row(s) re-measured" in text
    assert "drift median" in text and "machine:" in text
    assert len(cache.records()) == len(fn_rows) + 3  # nothing replaced or added


def test_refresh_replaces_flagged_rows_and_keeps_clean_ones(tmp_path, monkeypatch):
    cache = LatencyCache(str(tmp_path / "c.sqlite"))
    here = _fill(cache)
    rows = [r for r in cache.records(here) if r.signature.startswith("fn:") and not r.noop]
    for r in rows:  # on a busy machine _fill may have flagged some itself: start from clean rows
        cache.put(here, r.signature, replace(r.stats, disturbed=False), r.settings, replace=True)
    flagged, clean = rows[0], rows[1]
    cache.put(here, flagged.signature, replace(flagged.stats, value=1.0, disturbed=True), flagged.settings,
              replace=True)
    assert cache.peek(here, flagged.signature).stats.disturbed

    out = io.StringIO()
    result = verify.run_verify(cache, _args("--disturbed", "--refresh"), out)
    assert [r["signature"] for r in result["rows"]] == [flagged.signature] and result["replaced"] == 1
    now = cache.peek(here, flagged.signature)
    assert now.stats.robust < 1.0  # the new measurement replaced the flagged 1 s
    assert "replaced 1 row(s)" in out.getvalue()

    def disturbed_now(rec, device):
        return replace(rec.stats, disturbed=True, value=rec.stats.robust * 3)

    monkeypatch.setattr(verify, "remeasure", disturbed_now)
    out = io.StringIO()
    result = verify.run_verify(cache, _args("--match", clean.signature, "--refresh"), out)
    assert result["replaced"] == 0 and result["rows"][0]["drift"] == pytest.approx(2.0)
    assert cache.peek(here, clean.signature).stats.robust == pytest.approx(clean.stats.robust)
    assert "kept 1 stored clean row(s)" in out.getvalue()


def test_sample_and_match_select_rows(tmp_path):
    cache = LatencyCache(str(tmp_path / "c.sqlite"))
    _fill(cache)
    result = verify.run_verify(cache, _args("--sample", "1", "--seed", "3"), io.StringIO())
    assert len(result["rows"]) == 1
    result = verify.run_verify(cache, _args("--match", "fn:Add2*"), io.StringIO())
    assert [r["signature"].split("|")[0] for r in result["rows"]] == ["fn:Add2"]


def test_cli_verify_on_a_cache_file(tmp_path, capsys):
    path = str(tmp_path / "c.sqlite")
    with LatencyCache(path) as cache:
        _fill(cache)
    assert main(["cache", "verify", "--cache", path, "--sample", "2"]) == 0
    out = capsys.readouterr().out
    assert "re-measuring 2 on cpu|" in out and "drift median" in out
    for argv, match in ((["--sample", "0"], "--sample must be >= 1"), (["--all", "--sample", "2"], "exclude"),
                        (["--fingerprint", "nope"], "has no rows"), (["--wait-for-quiet", "-1"], "wait-for-quiet"),
                        (["--wait-for-quiet", "nan"], "wait-for-quiet")):
        assert main(["cache", "verify", "--cache", path] + argv) == 2
        assert match in capsys.readouterr().err
    assert main(["cache", "verify", "--cache", str(tmp_path / "missing.sqlite")]) == 2
    assert "nothing to verify" in capsys.readouterr().err
