"""Simulator tier: cocotb + Verilator over the configuration grid of the systolic core."""

import pytest

from hw.systolic import SystolicConfig
from cosim.sim import build_systolic_sim, run_cocotb

GRID = [
    SystolicConfig(rows=r, cols=c, in_width=w, k_depth=d)
    for (r, c, d) in [(1, 1, 4), (2, 3, 8), (4, 4, 16), (3, 5, 7), (8, 8, 32), (16, 16, 64)]
    for w in (8, 16)
] + [SystolicConfig(rows=4, cols=3, in_width=8, acc_width=16, k_depth=5)]   # wrap-around


@pytest.mark.sim
@pytest.mark.parametrize("cfg", GRID, ids=lambda c: c.name)
def test_systolic_rtl_matches_golden_model(cfg):
    sim = build_systolic_sim(cfg)
    tests, failed, log = run_cocotb(sim, "cosim.tb_systolic")
    assert tests == 4, f"expected 4 cocotb tests, ran {tests}; log: {log}"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed; log: {log}"
