import os

import pytest

#: The repository root (the checkout the tests run from).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The packaged Hydra config tree.
CONF = os.path.join(REPO, "nas_hw", "app", "conf")


def compose(overrides=(), config_name="config"):
    """The config ``nas-hw search`` (or ``profile``) would run with ``overrides``, validated."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from nas_hw.app.config import validate

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    return validate(cfg)

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


@pytest.fixture(autouse=True)
def _default_context_restored():
    """A test that changes nnabla's default context (a half-precision run...) leaves it as it was."""
    import nnabla as nn

    saved = nn.get_current_context()
    yield
    nn.set_default_context(saved)


# --------------------------------------------------------------------------- PostgreSQL server
# A real server for the server-store tests (tests/pg_server.py): started once per session in a
# temporary directory, stopped at the end. Under CI (CI=true) these tests must run: a missing
# package or a server that does not start fails them loudly. Elsewhere they are skipped, with the
# reason, only when the server package or the driver is not installed.
def _server_unavailable(reason):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the PostgreSQL server tests cannot run: {reason} "
                    "(.ci/run installs the postgresql package and the postgres extra)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server():
    from tests.pg_server import LocalServer, ServerUnavailable

    try:
        import psycopg  # noqa: F401
    except ImportError:
        _server_unavailable("psycopg is not installed (pip install 'nas_hw[postgres]')")
    try:
        server = LocalServer()
    except ServerUnavailable as err:
        _server_unavailable(str(err))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


_DB_COUNT = [0]


@pytest.fixture
def pg_url(pg_server):
    """The URL (with its password) of a fresh, empty database on the session's server."""
    _DB_COUNT[0] += 1
    return pg_server.create_database(f"t{os.getpid()}_{_DB_COUNT[0]}")
