# Quick start: `make demo` and `make test` work on a fresh machine with only Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Several simulated CPU devices, so the sharding code paths are really exercised.
TEST_XLA_FLAGS := --xla_force_host_platform_device_count=8

.PHONY: venv demo test bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Two simulated CPU devices: the batch is split so each core runs its own scan (~1.2x).
DEMO_XLA_FLAGS := --xla_force_host_platform_device_count=2

demo: $(STAMP)
	XLA_FLAGS=$(DEMO_XLA_FLAGS) $(BIN)/seq2exp demo --workdir runs/demo

# Two pytest workers (pytest-xdist): the suite's time is mostly compiling, one core each.
test: $(STAMP)
	XLA_FLAGS=$(TEST_XLA_FLAGS) $(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python benchmarks/scan.py
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/loader.py

clean:
	rm -rf $(VENV) build *.egg-info
