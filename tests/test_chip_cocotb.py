"""Simulator tier: the chip (systolic core + K ReRAM tiles) under cocotb + Verilator."""

import pytest

from cosim.sim import build_chip_sim, run_cocotb
from hw.chip import check_chip
from hw.manycore import ManycoreConfig
from hw.reram import TileConfig
from hw.systolic import SystolicConfig

# the chip of tests/test_cotrain.py (one build serves both): three systolic cores;
# non-ideal tiles with programming error, faults and read noise on six physical tiles,
# four crossbar rows summed per cycle (banked conductances); idle tiles clock-gated
CHIP = ManycoreConfig.single(SystolicConfig(rows=4, cols=4, k_depth=16),
                             TileConfig(rows=16, cols=16, write_latency=2, verify_iters=3,
                                        prog_variation=6, verify_tol=1, read_noise=5,
                                        stuck_on_ppm=20_000, adc_bits=6, seed=3,
                                        rows_per_cycle=4), 6, systolic_cores=3)
GRID = [CHIP]


@pytest.mark.sim
@pytest.mark.parametrize("cfg", GRID, ids=lambda c: c.name)
def test_chip_rtl_matches_functional_device(cfg):
    sim = build_chip_sim(cfg)
    tests, failed, log = run_cocotb(sim, "cosim.tb_chip")
    assert tests == 3, f"expected 3 cocotb tests, ran {tests}; log: {log}"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed; log: {log}"


def test_chip_config_errors_name_the_field():
    s, t = SystolicConfig(rows=2, cols=2), TileConfig(rows=4, cols=4)
    with pytest.raises(ValueError, match="ManycoreConfig.tiles_per_core"):
        ManycoreConfig.single(s, t, 0)
    with pytest.raises(ValueError, match=r"the RTL chip holds 1..31 ReRAM blocks .*has 32"):
        check_chip(ManycoreConfig.single(s, t, 32))
    with pytest.raises(TypeError, match="ManycoreConfig.tile "):
        ManycoreConfig.single(s, s, 1)
    with pytest.raises(ValueError, match=r"the RTL chip holds 1..16 systolic cores.* is 17"):
        check_chip(ManycoreConfig.single(s, t, 2, systolic_cores=17))
