#!/usr/bin/env bash
# Prints the path of a CPython 3.8-3.10 interpreter, or explains why there is none.
# nnabla 1.39 ships wheels only for CPython 3.8-3.10, so nothing newer will do.
# Order: $PYTHON, then python3.10 on PATH, then the pyenv 3.10.13 install.
set -u
ok() {
    "$1" -c 'import sys; sys.exit(0 if (3, 8) <= sys.version_info[:2] <= (3, 10) else 1)' >/dev/null 2>&1
}
if [ -n "${PYTHON:-}" ]; then
    # An explicit choice is honoured or refused, never silently replaced.
    if ok "$PYTHON"; then command -v "$PYTHON"; exit 0; fi
    echo "error: PYTHON=$PYTHON is not a working CPython 3.8-3.10 interpreter (nnabla 1.39 has wheels only for 3.8-3.10)." >&2
    exit 1
fi
tried=()
candidates=(python3.10 /root/.pyenv/versions/3.10.13/bin/python3.10)
for c in "${candidates[@]}"; do
    if ok "$c"; then
        command -v "$c"
        exit 0
    fi
    tried+=("$c")
done
{
    echo "error: no CPython 3.8-3.10 interpreter found (nnabla 1.39 has wheels only for 3.8-3.10)."
    echo "tried: ${tried[*]}"
    echo "Install Python 3.10 or point PYTHON at one, e.g. 'make test PYTHON=/usr/bin/python3.9'."
} >&2
exit 1
