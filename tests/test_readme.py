"""The README's Python examples run as written (with fewer timing runs)."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def blocks():
    with open(README) as fh:
        return re.findall(r"```python\n(.*?)```", fh.read(), re.S)


def test_readme_examples_run():
    code = [b for b in blocks() if "hardware_aware" not in b]  # the Runner snippet: see below
    assert len(code) == 4
    _, seed_example, table_example, other_estimators = code  # the first: see the next test
    fast = seed_example.replace('n_warmup, n_runs = 0.05, 500, "m", 10, 100',
                                'n_warmup, n_runs = 0.05, 500, "m", 1, 3')
    assert fast != seed_example  # the replacement above still matches the README
    scope = {}
    exec(compile(fast, "README.md: seed example", "exec"), scope)
    assert scope["latency_by_module_ms"] > 0 and scope["latency_by_graph_ms"] > 0
    assert scope["true_latency_ms"] > 0
    # the other estimators continue the seed example (net, out, nn); no power meter here
    from nas_hw.errors import PowerUnavailableError
    try:
        exec(compile(other_estimators, "README.md: other estimators", "exec"), scope)
    except PowerUnavailableError as err:
        assert "energy meter" in str(err) or "powercap" in str(err)
    import nnabla as nn
    import numpy as np
    scope = {"nn": nn, "valid_loss": nn.Variable.from_numpy_array(np.array(1.0, dtype=np.float32))}
    from nas_hw.search.spaces import MobileNetSpace
    scope["MobileNetSpace"] = MobileNetSpace
    exec(compile(table_example, "README.md: table example", "exec"), scope)
    assert float(scope["arch_loss"].d) == pytest.approx(1.0 + 0.1 * max(0.0, scope["table"].expected() - 0.5) / 0.5,
                                                        rel=1e-4)


def test_readme_runner_snippet_names_what_exists():
    """The nnabla_nas Runner snippet continues a user's own nnabla_nas script (their model,
    optimizer, data...), so it cannot run alone; examples/nnabla_nas_runner.py runs it whole
    (tests/test_examples.py). Here: its names exist and take the keywords it passes."""
    import inspect
    import re as _re

    (snippet,) = [b for b in blocks() if "hardware_aware" in b]
    from nas_hw.search.runner import HardwareAware
    accepted = set(inspect.signature(HardwareAware.__init__).parameters)
    for keyword in set(_re.findall(r"(\w+)=", snippet)) - {"weight", "input_shape"}:
        assert keyword in accepted, keyword
    import nas_hw
    from nas_hw.nas import callbacks
    for name in ("CandidateTable", "LatencyGraphEstimator", "LatencyPenalty"):
        assert name in snippet and hasattr(nas_hw, name)
    for name in ("LatencyMonitor", "CSVLogger"):
        assert name in snippet and hasattr(callbacks, name)


def test_readme_first_screen_penalty_runs(tmp_path, monkeypatch):
    """The 'add the penalty to your own search' lines of the first screen, on a small space of
    3-channel 32x32 inputs (fewer timing runs, a cache of its own)."""
    import nnabla as nn
    import numpy as np
    from nas_hw.search.spaces import MobileNetSpace

    monkeypatch.setenv("NAS_HW_CACHE", str(tmp_path / "cache.sqlite"))
    first = [b for b in blocks() if "hardware_aware" not in b][0]
    fast = first.replace("LatencyGraphEstimator()", "LatencyGraphEstimator(n_run=3, n_warmup=1)")
    assert fast != first and "LatencyPenalty(table, weight=0.1)" in first
    model = MobileNetSpace(in_channels=3, stage_channels=(8,), stage_blocks=(1,), stage_strides=(2,), mode="full")
    model(nn.Variable((2, 3, 32, 32)))
    scope = {"model": model, "valid_loss": nn.Variable.from_numpy_array(np.array(1.0, dtype=np.float32))}
    exec(compile(fast, "README.md: first screen", "exec"), scope)
    scope["arch_loss"].forward()
    expected = scope["table"].expected()
    assert expected > 0 and float(scope["arch_loss"].d) == pytest.approx(1.0 + 0.1 * expected, rel=1e-4)
    assert (tmp_path / "cache.sqlite").exists()  # measured into the cache it was told to use
