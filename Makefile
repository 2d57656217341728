# Set-up and entry points. `make test` and `make search` create .venv on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := test,nnabla-nas,examples,sweep,postgres,onnx

.PHONY: test smoke search venv bench clean

venv: $(STAMP)

# Reinstalls only when the package metadata (pyproject.toml) changed (editable install: code edits need nothing).
$(STAMP): pyproject.toml tools/find_python.sh
	@interp=$$(tools/find_python.sh) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(0 if (3,8) <= sys.version_info[:2] <= (3,10) else 1)'; then \
		echo "creating $(VENV) with $$interp"; rm -rf $(VENV); $$interp -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install -q --upgrade "pip>=23" "setuptools>=61" wheel
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# What `pip install` gives a user: the sdist and wheel built from the tree, the wheel installed
# into a fresh virtual environment outside the checkout, the four nas-hw commands run there.
smoke: $(STAMP)
	tools/wheel_smoke.sh

# The hardware-aware search (latency.weight=0.1 by default), with the accuracy-only reference
# beside its result (run once per device and settings, then read from the cache).
search: $(STAMP)
	$(PY) examples/search.py reference.mode=auto

bench: $(STAMP)
	$(PY) benchmarks/estimators.py

clean:
	rm -rf $(VENV) build *.egg-info
