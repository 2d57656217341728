"""Runs ``nas-hw report ARGS...`` under an address-space limit and prints one JSON line: the exit
code, stderr, and the peak resident memory before and after (``python bounded_child.py
HEADROOM_BYTES ARGS...``).

Everything is imported and nnabla's CPU context created first; then ``RLIMIT_AS`` is set to the
process's address space plus ``HEADROOM_BYTES``, so reading anything near the size of a bomb
fails with ``MemoryError`` instead of swapping the machine (and the test sees that message).
"""
import contextlib
import io
import json
import resource
import sys


def _status_bytes(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def vm_size_bytes():
    return _status_bytes("VmSize")


def peak_rss_bytes():
    """This process's resident-set high-water mark (``VmHWM``: unlike ``ru_maxrss``, not
    inherited from the parent that forked it)."""
    return _status_bytes("VmHWM")


def main():
    headroom = int(sys.argv[1])
    from nas_hw.app import cli
    from nas_hw.measure.device import get_context

    get_context("cpu", 0)
    before = peak_rss_bytes()
    limit = vm_size_bytes() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["report"] + sys.argv[2:])
    print(json.dumps({"code": code, "stderr": err.getvalue(), "rss_before": before,
                      "rss_peak": peak_rss_bytes(), "address_space_limit": limit}))


if __name__ == "__main__":
    main()
