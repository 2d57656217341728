"""The registry of processes measuring into one store (``<cache>.measuring/``)."""
import json
import os
import subprocess
import sys
import time

from nas_hw.measure import peers
from tests.conftest import REPO

_HOLD = """
import sys, time
sys.path.insert(0, {root!r})
from nas_hw.measure import peers
peers.register({cache!r})
print("registered", flush=True)
time.sleep(60)
"""


def test_another_process_is_seen_while_alive_and_forgotten_when_gone(tmp_path):
    cache = str(tmp_path / "latency.sqlite")
    assert peers.measuring_peers(cache) == [] and peers.count_peers(":memory:") == 0
    child = subprocess.Popen([sys.executable, "-c", _HOLD.format(root=REPO, cache=cache)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "registered"
        seen = peers.measuring_peers(cache)
        assert [p["pid"] for p in seen] == [child.pid] and peers.count_peers(cache) == 1
    finally:
        child.kill()
        child.wait()
    assert peers.measuring_peers(cache) == []  # the dead process's entry is stale: removed
    assert os.listdir(peers.registry_dir(cache)) == []


def test_this_process_is_not_its_own_peer_and_stale_or_foreign_entries_are_handled(tmp_path):
    cache = str(tmp_path / "c.sqlite")
    reg = peers.register(cache)
    assert reg.path and os.path.exists(reg.path) and peers.register(cache) is reg
    assert peers.measuring_peers(cache) == []
    directory = peers.registry_dir(cache)
    with open(os.path.join(directory, "h-1.json"), "w") as fh:  # a reused pid: another start time
        json.dump({"pid": os.getppid(), "host": os.uname().nodename, "started_ticks": -5}, fh)
    with open(os.path.join(directory, "elsewhere-7.json"), "w") as fh:  # another machine: not judged
        json.dump({"pid": 7, "host": "elsewhere.invalid", "started_ticks": 1}, fh)
    with open(os.path.join(directory, "broken.json"), "w") as fh:
        fh.write("{")
    assert peers.measuring_peers(cache) == []
    left = sorted(os.listdir(directory))
    assert "h-1.json" not in left and "elsewhere-7.json" in left and "broken.json" in left
    reg.close()
    assert not os.path.exists(os.path.join(directory, os.path.basename(reg.path or "x"))) or reg.path is None


def test_an_unwritable_registry_does_not_stop_measuring(tmp_path):
    blocker = tmp_path / "c.sqlite.measuring"
    blocker.write_text("a file where the directory would be")
    reg = peers.Registration(str(tmp_path / "c.sqlite"))
    assert reg.path is None and peers.measuring_peers(str(tmp_path / "c.sqlite")) == []
    time.sleep(0)
