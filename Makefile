# skip2bench: `make demo` runs the built-in demo on the host, `make test` runs the tests,
# `make bench` times the C core against NumPy and PyTorch on this host.
VENV ?= .venv
PY := $(VENV)/bin/python
S2B := $(VENV)/bin/skip2bench

.PHONY: setup bench-setup demo test bench paper clean-cache

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# PyTorch (CPU) for the speed benchmark and its tests.
bench-setup: $(VENV)/.bench-installed

$(VENV)/.bench-installed: $(VENV)/.installed
	$(VENV)/bin/pip install -q -e '.[bench]'
	touch $@

demo: setup
	$(S2B) run --experiment experiments/demo.toml --lab labs/local.toml

test: setup bench-setup
	$(PY) -m pytest -q

bench: setup bench-setup
	$(S2B) bench

# Reproduce the paper-style tables on the real data sets (three seeds each).
paper: setup
	$(S2B) run --experiment experiments/paper-fan.toml --lab labs/local.toml
	$(S2B) run --experiment experiments/paper-har.toml --lab labs/local.toml

clean-cache:
	rm -rf results/cache
