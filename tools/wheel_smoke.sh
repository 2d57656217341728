#!/usr/bin/env bash
# What a user gets from `pip install`: builds the sdist and the wheel from this tree (the wheel
# from the sdist, as PyPI users would get it), installs the wheel into a fresh virtual
# environment OUTSIDE the checkout, and runs the four commands there, from a directory that is
# not the checkout: nas-hw report (an .nnp built with plain nnabla, and module:function from the
# current directory), nas-hw profile, nas-hw search, nas-hw cache. Then `pip install <checkout>`
# into the same environment and one command again. Tiny settings: about a minute once the
# packages are in pip's cache.
#
#   tools/wheel_smoke.sh            (make smoke; CI runs it before the tests)
#   KEEP=1 tools/wheel_smoke.sh     keeps the work directory for a look
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
interp=$("$repo/tools/find_python.sh")
builder=${BUILD_PYTHON:-$repo/.venv/bin/python}   # any interpreter with `build` (the test extra)
work=$(mktemp -d "${TMPDIR:-/tmp}/nas_hw_smoke.XXXXXX")
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "work directory: $work"; fi
passed=0
failed=0

step() {  # step NAME FUNCTION: runs the function, logs its output, counts it
    local name=$1 log
    log=$work/step.$((passed + failed)).log
    if "$2" >"$log" 2>&1; then
        passed=$((passed + 1)); echo "ok   $name"
    else
        failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/    /' "$log" | tail -40
    fi
}
has() { grep -q -- "$2" "$1" || { echo "$1 lacks: $2"; return 1; }; }

echo "== build (sdist, then the wheel from the sdist) with $builder"
"$builder" -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/nas_hw-*.whl)
echo "built $(cd "$work/dist" && ls)"

echo "== fresh virtual environment outside the checkout: $work/venv ($interp)"
"$interp" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade "pip>=23" >"$work/pip.log" 2>&1 || { tail -20 "$work/pip.log"; exit 1; }
"$work/venv/bin/python" -m pip install -q "$wheel" >>"$work/pip.log" 2>&1 || { tail -40 "$work/pip.log"; exit 1; }
bin=$work/venv/bin
mkdir -p "$work/user"
cd "$work/user"     # a user's directory: no checkout on sys.path
export NAS_HW_CACHE=$work/user/cache.sqlite

cat > mynet.py <<'EOF'
import nnabla.functions as F
import nnabla.parametric_functions as PF


def build(x):
    h = F.relu(PF.convolution(x, 8, (3, 3), pad=(1, 1), name="c1"))
    return PF.affine(F.max_pooling(h, (2, 2)), 10, name="fc")
EOF
cat > make_nnp.py <<'EOF'
import nnabla as nn
from nnabla.utils.save import save
from mynet import build

x = nn.Variable((1, 3, 16, 16))
y = build(x)
save("mynet.nnp", {"networks": [{"name": "mynet", "batch_size": 1, "outputs": {"y": y}, "names": {"x": x}}],
                   "executors": [{"name": "runtime", "network": "mynet", "data": ["x"], "output": ["y"]}]})
EOF
fast=(--n-run 3 --n-warmup 1)
tiny=(space.stem_channels=4 space.stage_channels=[6] space.stage_blocks=[2] space.stage_strides=[1]
      space.kernels=[3,5] space.expansions=[1,3] estimator.n_run=2 estimator.n_warmup=1 progress=false)

from_wheel() {
    "$bin/python" -c "import nas_hw, sys; print(nas_hw.__file__); sys.exit(nas_hw.__file__.startswith('$repo'))"
}
version() { "$bin/nas-hw" --version | grep 'nas-hw '; }
report_nnp() {
    "$bin/python" make_nnp.py && "$bin/nas-hw" report mynet.nnp "${fast[@]}" --out rep_nnp > rep_nnp.txt &&
        test -s rep_nnp/report.png && has rep_nnp.txt 'c1/conv' && has rep_nnp.txt 'FLOPs'
}
report_function() {
    "$bin/nas-hw" report mynet:build "${fast[@]}" --out rep_fn --no-plot > rep_fn.txt &&
        test -s rep_fn/report.csv && test ! -e rep_fn/report.png && has rep_fn.txt 'fc/affine'
}
profile() {
    "$bin/nas-hw" profile "${tiny[@]}" table.input_shape=[1,1,8,8] > profile.txt &&
        has profile.txt 'candidate table of MobileNetSpace' && test ! -e profile.log
}
search() {
    "$bin/nas-hw" search "${tiny[@]}" search.epochs=1 search.warmup_epochs=0 search.max_batches=2 \
        retrain.epochs=1 retrain.max_batches=2 callbacks.monitor.n_run=2 reference.mode=auto \
        hydra.run.dir=run > search.txt 2>&1 &&
        test -s run/report.json && ls run/tensorboard/events.out.tfevents.* &&
        test -s run/reference/report.json && has search.txt 'accuracy-only reference'
}
cache() {
    "$bin/nas-hw" cache ls | grep 'row(s)' && "$bin/nas-hw" cache export rows.json &&
        "$bin/nas-hw" cache import rows.json --cache other.sqlite | grep 'imported rows.json'
}
one_line_error() {
    if "$bin/nas-hw" report missing.nnp 2> err.txt; then return 1; fi
    cat err.txt; test "$(wc -l < err.txt)" -eq 1 && has err.txt '^nas-hw: error: '
}
pip_install_tree() {
    "$bin/python" -m pip install -q --no-deps --force-reinstall "$repo" &&
        "$bin/nas-hw" report mynet:build "${fast[@]}" --out rep_tree --no-plot > /dev/null &&
        test -s rep_tree/report.json
}

step "installed from the wheel, not the checkout" from_wheel
step "nas-hw --version" version
step "nas-hw report FILE.nnp (with the chart)" report_nnp
step "nas-hw report module:function from the current directory, --no-plot" report_function
step "nas-hw profile" profile
step "nas-hw search (tiny; report.json, TensorBoard files, the reference)" search
step "nas-hw cache ls / export / import" cache
step "an error is one line" one_line_error
step "pip install <checkout> (pip builds it from the tree)" pip_install_tree

echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
