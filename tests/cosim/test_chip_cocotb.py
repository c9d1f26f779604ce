"""Simulator tier: the chip (systolic core + K ReRAM tiles) under cocotb + Verilator."""

from cosim.sim import build_chip_sim, run_cocotb


def test_chip_rtl_matches_functional_device(cotrain_cfg):
    """The chip of tests/cosim/test_cotrain.py (one build serves both): three systolic
    cores; non-ideal tiles with programming error, faults and read noise on six physical
    tiles, four crossbar rows summed per cycle (banked conductances); idle tiles
    clock-gated."""
    sim = build_chip_sim(cotrain_cfg.hw)
    tests, failed, log = run_cocotb(sim, "cosim.tb_chip")
    assert tests == 3, f"expected 3 cocotb tests, ran {tests}; log: {log}"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed; log: {log}"
