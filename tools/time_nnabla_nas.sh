#!/usr/bin/env bash
# Runs nas_hw on nnabla_nas's real SearchNets end to end and prints one JSON line per run: date,
# command, exit code, wall time, load averages before and after, and what report.json says
# (derived candidates, estimated and measured latency, test accuracy).
#
#   tools/time_nnabla_nas.sh digits                  # space=nnabla_nas/{darts,mobilenet,fairnas} x search=darts|proxyless
#   tools/time_nnabla_nas.sh cifar DIR               # mobilenet, and a two-cell DARTS at 32x32, on CIFAR-10 in DIR
#   tools/time_nnabla_nas.sh example                 # examples/nnabla_nas_runner.py: nnabla_nas's own Runner
# The cache is $NAS_HW_TIME_CACHE (default /tmp/nas_hw_time_nnabla_nas.sqlite); runs go to
# $NAS_HW_TIME_OUT (default /tmp/nas_hw_time_nnabla_nas/). Default search settings unless given.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?usage: tools/time_nnabla_nas.sh digits|cifar DIR|example}
cache=${NAS_HW_TIME_CACHE:-/tmp/nas_hw_time_nnabla_nas.sqlite}
out=${NAS_HW_TIME_OUT:-/tmp/nas_hw_time_nnabla_nas}
mkdir -p "$out"
make venv > /dev/null

run() {  # run NAME COMMAND...
    local name=$1; shift
    local before after start end rc=0
    before=$(cut -d' ' -f1-3 /proc/loadavg)
    start=$(date +%s)
    NAS_HW_CACHE=$cache nice -n 10 "$@" > "$out/$name.log" 2>&1 || rc=$?
    end=$(date +%s)
    after=$(cut -d' ' -f1-3 /proc/loadavg)
    .venv/bin/python - "$name" "$*" "$rc" "$((end - start))" "$before" "$after" "$out" <<'PY'
import json, os, sys, time
name, command, rc, wall, before, after, out = sys.argv[1:]
line = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "run": name, "command": command,
        "rc": int(rc), "wall_s": int(wall), "load_before": before, "load_after": after, "cpus": os.cpu_count()}
report = os.path.join(out, name, "report.json")
if os.path.isfile(report):
    r = json.load(open(report))
    line.update({k: r.get(k) for k in ("candidates", "estimated_latency_ms", "true_latency_ms", "test_acc",
                                       "deploy_input_shape", "data_adapted_from")})
print(json.dumps(line))
PY
}

case $what in
    digits)
        for space in darts mobilenet fairnas; do
            for search in darts proxyless; do
                run "digits-$space-$search" .venv/bin/nas-hw search "space=nnabla_nas/$space" "search=$search" \
                    estimator=graph latency.weight=0.1 progress=false "hydra.run.dir=$out/digits-$space-$search"
            done
        done ;;
    cifar)
        root=${2:?usage: tools/time_nnabla_nas.sh cifar DIR}
        run cifar-mobilenet .venv/bin/nas-hw search space=nnabla_nas/mobilenet data=cifar10 "data.root=$root" \
            estimator=graph latency.weight=0.1 progress=false "hydra.run.dir=$out/cifar-mobilenet"
        run cifar-darts .venv/bin/nas-hw search space=nnabla_nas/darts space.image_size=32 space.net.num_cells=2 \
            data=cifar10 "data.root=$root" estimator=graph latency.weight=0.1 search.epochs=2 \
            search.warmup_epochs=1 retrain.epochs=2 progress=false "hydra.run.dir=$out/cifar-darts" ;;
    example)
        for algorithm in darts proxyless; do
            run "example-$algorithm" .venv/bin/python examples/nnabla_nas_runner.py --algorithm "$algorithm" \
                --out "$out/example-$algorithm" --cache "$cache"
        done ;;
    *) echo "what must be digits, cifar or example, got $what" >&2; exit 2 ;;
esac
