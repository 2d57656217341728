#!/usr/bin/env bash
# The sweep behind docs/search_sweep.md: the latency-aware search at several latency weights and
# the two baselines (random search, the uniform family), 5 seeds each, on the harder embedded task
# (data=distorted_digits), then `nas-hw sweep-report`, which re-times every derived network side
# by side, interleaved, and writes the document, the CSV, the JSON and the plot.
#
#   tools/evidence_sweep.sh                 # all of it (about 2 CPU-hours)
#   STEPS=report tools/evidence_sweep.sh    # only the report, on the multiruns already there
#
# Settings (environment): OUT (outputs/evidence/sweep), DOC (docs/search_sweep: the report's
# prefix), SEEDS (0,1,2,3,4), WEIGHTS (0.1,0.3; and always latency=none, weight 0), DRAWS
# (random architectures per seed: 8),
# CANDIDATES (the uniform family), NICE (10), STEPS (profile uniform search_none search_<w> for
# each weight, random, report), CONCURRENT (1: the multiruns run at the same time, each one job
# after the other; 0: one multirun after the other), REMEASURE (100), ROUNDS (7).
# Every job reads the candidate table `nas-hw profile` stored first (table.stored=true) and
# measures nothing, so no job times layers while another trains; the report step, run last and
# alone, times every derived network side by side. The table and the runs use a cache of their
# own ($OUT/cache.sqlite). Logs: $OUT/logs/<step>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/evidence/sweep}
DOC=${DOC:-docs/search_sweep}
SEEDS=${SEEDS:-0,1,2,3,4}
WEIGHTS=${WEIGHTS:-0.1,0.3}
DRAWS=${DRAWS:-8}
CANDIDATES=${CANDIDATES:-ir_k3_e3,ir_k3_e6,ir_k5_e3,ir_k5_e6,ir_k7_e3,ir_k7_e6}
NICE=${NICE:-10}
SEARCHES="search_none $(for w in ${WEIGHTS//,/ }; do printf 'search_%s ' "$w"; done)"
STEPS=${STEPS:-profile uniform $SEARCHES random report}
NAS_HW=${NAS_HW:-.venv/bin/nas-hw}
export NAS_HW_CACHE=${NAS_HW_CACHE:-$PWD/$OUT/cache.sqlite}
mkdir -p "$OUT/logs"

# what every job shares: the task, and a table measured once, robustly (trimmed mean of 200 runs)
TASK=(data=distorted_digits progress=false reference.mode=off)
PROFILE=(estimator.n_run=200 estimator.outlier=0.25 estimator.n_warmup=10)
JOB=(table.stored=true callbacks=sweep retrain.epochs=8)
SEARCH=(search.warmup_epochs=1 search.epochs=3 search.max_batches=8 search.arch_lr=0.01)

step() { echo "== $(date -u '+%F %T UTC') load $(cut -d' ' -f1 /proc/loadavg): $*"; }
run() { step "$*"; /usr/bin/time -f "   wall %e s, cpu %U+%S s" nice -n "$NICE" "$@"; }

one() {
  case $1 in
    profile) run "$NAS_HW" profile "${TASK[@]}" "${PROFILE[@]}" ;;
    uniform) run "$NAS_HW" search -m "${TASK[@]}" "${JOB[@]}" search=uniform "search.candidate=$CANDIDATES" \
               latency=none "seed=$SEEDS" "hydra.sweep.dir=$OUT/uniform" ;;
    # weight 0 is the accuracy-only search, latency=none (a linear penalty refuses weight 0)
    search_none) run "$NAS_HW" search -m "${TASK[@]}" "${JOB[@]}" "${SEARCH[@]}" latency=none "seed=$SEEDS" \
               "hydra.sweep.dir=$OUT/search_none" ;;
    search_*) w=${1#search_}
             run "$NAS_HW" search -m "${TASK[@]}" "${JOB[@]}" "${SEARCH[@]}" "latency.weight=$w" "seed=$SEEDS" \
               "hydra.sweep.dir=$OUT/search_$w" ;;
    random)  run "$NAS_HW" search -m "${TASK[@]}" "${JOB[@]}" search=random "search.draw=range(0,$DRAWS)" \
               latency=none "seed=$SEEDS" "hydra.sweep.dir=$OUT/random" ;;
    report)  step "sweep-report (timing: not niced)"
             /usr/bin/time -f "   wall %e s, cpu %U+%S s" "$NAS_HW" sweep-report "$OUT"/search_* "$OUT/random" \
               "$OUT/uniform" --out "$DOC" --remeasure "${REMEASURE:-100}" --rounds "${ROUNDS:-7}" ;;
    *) echo "unknown step $1 (allowed: profile uniform search_none search_<weight> random report)" >&2; exit 2 ;;
  esac
}

pending=()
for s in $STEPS; do
  if [[ ${CONCURRENT:-1} == 1 && $s =~ ^(uniform|search_.*|random)$ ]]; then
    one "$s" > "$OUT/logs/$s.log" 2>&1 &
    pending+=($!)
  else
    for p in "${pending[@]}"; do wait "$p"; done
    pending=()
    one "$s"
  fi
done
for p in "${pending[@]}"; do wait "$p"; done
step done
