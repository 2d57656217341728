#!/usr/bin/env bash
# Times `make search` as a newcomer meets it and prints one JSON line: date, command, wall time,
# load averages before and after, and whether the latency cache was new (cold: the candidate
# table is measured and the accuracy-only reference is run once) or reused (warm).
#
#   tools/time_make_search.sh cold    # a fresh cache file: what the very first run costs
#   tools/time_make_search.sh warm    # the same cache file again: every later run
# The cache is $NAS_HW_TIME_CACHE (default /tmp/nas_hw_time_search.sqlite); the run directories
# go to outputs/search/ as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: tools/time_make_search.sh cold|warm}
cache=${NAS_HW_TIME_CACHE:-/tmp/nas_hw_time_search.sqlite}
case $mode in
    cold) rm -f "$cache" "$cache-wal" "$cache-shm" "$cache.lock" ;;
    warm) [ -f "$cache" ] || { echo "no cache at $cache: run 'cold' first" >&2; exit 2; } ;;
    *) echo "mode must be cold or warm, got $mode" >&2; exit 2 ;;
esac
make venv > /dev/null
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)
start=$(date +%s)
NAS_HW_CACHE=$cache make search > "/tmp/nas_hw_time_search.$mode.log" 2>&1
end=$(date +%s)
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)
printf '{"date": "%s", "command": "NAS_HW_CACHE=%s make search", "cache": "%s", "wall_s": %d, "load_before": "%s", "load_after": "%s", "cpus": %s, "log": "%s"}\n' \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$cache" "$mode" "$((end - start))" \
    "$load_before" "$load_after" "$(nproc)" "/tmp/nas_hw_time_search.$mode.log"
