# skip2bench: `make demo` runs the built-in demo on the host, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
S2B := $(VENV)/bin/skip2bench

.PHONY: setup demo test paper clean-cache

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

demo: setup
	$(S2B) run --experiment experiments/demo.toml --lab labs/local.toml

test: setup
	$(PY) -m pytest -q

# Reproduce the paper-style tables on the real data sets (three seeds each).
paper: setup
	$(S2B) run --experiment experiments/paper-fan.toml --lab labs/local.toml --out results/runs/paper-fan
	$(S2B) run --experiment experiments/paper-har.toml --lab labs/local.toml --out results/runs/paper-har

clean-cache:
	rm -rf results/cache
