"""Simulator tier: cocotb + Verilator over the configuration grid of the systolic core."""

import pytest

from hw.systolic import SystolicConfig
from cosim.sim import build_systolic_sim, run_cocotb

# one, non-power-of-two, asymmetric, square and large arrays at both input widths, plus a
# narrow accumulator that wraps (the chip tests add a 4x4 and a 4x3 core)
GRID = [
    SystolicConfig(rows=r, cols=c, in_width=w, k_depth=d)
    for (r, c, d, w) in [(1, 1, 4, 8), (1, 1, 4, 16), (2, 3, 8, 8), (3, 5, 7, 16), (4, 4, 16, 8),
                         (8, 8, 32, 16), (16, 16, 64, 8), (16, 16, 64, 16)]
] + [SystolicConfig(rows=4, cols=3, in_width=8, acc_width=16, k_depth=5)]   # wrap-around


@pytest.mark.parametrize("cfg", GRID, ids=lambda c: c.name)
def test_systolic_rtl_matches_golden_model(cfg):
    sim = build_systolic_sim(cfg)
    tests, failed, log = run_cocotb(sim, "cosim.tb_systolic")
    assert tests == 4, f"expected 4 cocotb tests, ran {tests}; log: {log}"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed; log: {log}"
