# skip2bench: `make demo` runs the built-in demo on the host, `make test` runs the tests,
# `make bench` times the C core against NumPy and PyTorch on this host.
# The emulated lab: `make lab-deps` (as root) installs what its stand-ins need, `make lab-up` /
# `make lab-down` start and stop it (labs/emulated.toml).
VENV ?= .venv
PY := $(VENV)/bin/python
S2B := $(VENV)/bin/skip2bench

LAB ?= labs/emulated.toml
# Debian packages of the emulated lab: OpenSSH and dropbear stand-ins for SBCs, Debian's Python
# with NumPy on them, the aarch64 cross-compiler and QEMU user mode for the cross-compiled board;
# the ARM toolchain and QEMU system emulation for the MCU boards, socat and ser2net to serve one of them;
# Chromium and its driver, in which the tests check the HTML pages.
LAB_PACKAGES = openssh-server openssh-client dropbear-bin util-linux python3-venv python3-numpy \
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
	qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi socat ser2net \
	chromium chromium-driver

.PHONY: setup bench-setup demo test bench paper paper-emulated clean-cache lab-deps lab-up lab-down lab-check

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

# Every test but those that compare with PyTorch (1.2 GB) and the benchmarks: `make bench` runs them.
test: setup
	$(PY) -m pytest -q --durations=15 -m "not torch and not bench"
	@echo "(the tests that compare with PyTorch and the benchmarks run in make bench)"

bench: setup bench-setup
	$(PY) -m pytest -q -s -m "torch or bench"
	$(S2B) bench

# Reproduce the paper-style tables on the real data sets (three seeds each).
paper: setup
	$(S2B) paper --runs results --out results/paper

# The same with the emulated boards' tables (the aarch64 SBC and the MCU boards; about five minutes).
# The lab is named as `paper` names it (built-in: its keys in ./.emulated).
paper-emulated: setup
	$(S2B) lab up --lab emulated
	$(S2B) paper --emulated --runs results --out results/paper; status=$$?; \
	$(S2B) lab down --lab emulated; exit $$status

clean-cache:
	rm -rf "$$($(PY) -c 'from harness import paths; print(paths.cache_dir())')"

lab-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(LAB_PACKAGES) >/dev/null

lab-up: setup
	$(S2B) lab up --lab $(LAB)

lab-down: setup
	$(S2B) lab down --lab $(LAB)

lab-check: setup
	$(S2B) lab check --lab $(LAB)
