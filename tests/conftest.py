import os

import pytest

# Counts the reliability and fuzz tests want in every run's output (CI's log included):
# collected through `summary(...)` and printed at the end of the session, since pytest
# captures a passing test's own prints.
SUMMARY = []


def summary(line):
    print(line)
    SUMMARY.append(line.strip())


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("nas_hw reliability and fuzz counts")
        for line in SUMMARY:
            terminalreporter.write_line(line)

# Tests never touch the user's real cache: each test session gets its own file.
@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HW_CACHE", str(tmp_path / "latency.sqlite"))
    yield


def cuda_available():
    try:
        import nnabla_ext.cuda  # noqa: F401
    except Exception:
        return False
    return True


requires_gpu = pytest.mark.skipif(not cuda_available(), reason="needs nnabla-ext-cuda and a CUDA GPU (pip install 'nas_hw[cuda]')")
os.environ.setdefault("PYTHONHASHSEED", "0")
