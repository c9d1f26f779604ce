"""Co-simulated training without a simulator: the chip a run needs, the checked device's
sampling and first-difference stop, and the demo report from run files."""

import dataclasses
import json

import pytest

from cosim.cotrain import chip_for
from hw.manycore import ManycoreConfig
from hw.reram import TileConfig
from hw.systolic import SystolicConfig

def test_chip_must_hold_the_frozen_weights_and_be_simulable(cotrain_cfg):
    CFG = cotrain_cfg
    assert chip_for(CFG).blocks == 6
    too_few = dataclasses.replace(CFG, hw=dataclasses.replace(CFG.hw, tiles_per_core=5))
    with pytest.raises(ValueError, match=r"frozen matrix 'layers.0.ff2' \(16x16, 1 block of "
                                         r"16x16\) does not fit.*1 ReRAM tile\(s\) short"):
        chip_for(too_few)
    qv = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, mapping="qv"),
                             hw=dataclasses.replace(CFG.hw, tiles_per_core=2))
    assert chip_for(qv).blocks == 2                 # Q and V only
    big = dataclasses.replace(CFG, hw=dataclasses.replace(CFG.hw, tiles_per_core=32))
    with pytest.raises(ValueError, match="the RTL chip holds 1..31 ReRAM blocks"):
        chip_for(big)
    assert chip_for(dataclasses.replace(
        CFG, hw=dataclasses.replace(CFG.hw, systolic_cores=4))).systolic_cores == 4
    many = dataclasses.replace(CFG, hw=dataclasses.replace(CFG.hw, systolic_cores=17))
    with pytest.raises(ValueError, match=r"the RTL chip holds 1..16 systolic cores.* is 17"):
        chip_for(many)


def test_checked_device_samples_checks_and_stops_at_the_first_difference():
    import numpy as np

    from cosim.rtl_device import CheckedDevice, OpMismatch
    from sw.device.backends import FunctionalDevice

    hw = ManycoreConfig.single(SystolicConfig(rows=2, cols=2, k_depth=4),
                               TileConfig(rows=4, cols=4, write_latency=1), 4)

    class Stand_in:                 # an "RTL" that is the functional model, counting calls
        def __init__(self, wrong=False):
            self.dev, self.calls, self.wrong = FunctionalDevice(hw), 0, wrong

        def matmul(self, A, B):
            self.calls += 1
            out = self.dev.matmul(A, B)
            if self.wrong:
                out[1, 2] += 1
            return out

        def take_stats(self):
            return {}

    rng = np.random.default_rng(0)
    A, B = rng.integers(-9, 9, (3, 5)), rng.integers(-9, 9, (5, 4))
    rtl = Stand_in()
    dev = CheckedDevice(rtl, FunctionalDevice(hw), sample=0.5, seed=1)
    for _ in range(100):
        dev.matmul(A, B)
    assert 30 < rtl.calls < 70 and dev.counts.rtl == dev.counts.checked == rtl.calls
    assert dev.counts.functional == 100 - rtl.calls
    dev.rtl_enabled = False                         # evaluation passes: functional only
    dev.matmul(A, B)
    assert dev.counts.rtl == rtl.calls
    bad = CheckedDevice(Stand_in(wrong=True), FunctionalDevice(hw))
    with pytest.raises(OpMismatch, match=r"matmul A\(3, 5\) B\(5, 4\): 1 of 12 elements differ; "
                                         r"first at \(1, 2\)"):
        bad.matmul(A, B)
    with pytest.raises(ValueError, match="read_noise"):
        noisy = ManycoreConfig.single(hw.systolic, TileConfig(rows=4, cols=4, read_noise=1), 4)
        CheckedDevice(Stand_in(), FunctionalDevice(noisy), sample=0.5)
    # resuming: the reference takes the checkpoint's tile counters; the RTL's noise
    # counters cannot follow, so a noisy run refuses to resume instead of mismatching
    ref = FunctionalDevice(noisy)
    ref.program("w", np.ones((4, 4), np.int64))
    ref.mvm("w", np.ones((2, 4), np.int64), False)
    with pytest.raises(ValueError, match="cannot resume a co-simulated run with read noise"):
        CheckedDevice(Stand_in(), FunctionalDevice(noisy)).load_state_dict(ref.state_dict())
    quiet = FunctionalDevice(hw)
    quiet.program("w", np.ones((4, 4), np.int64))
    dev = CheckedDevice(Stand_in(), FunctionalDevice(hw))
    dev.ref.program("w", np.ones((4, 4), np.int64))
    dev.load_state_dict(quiet.state_dict())


def test_demo_report_from_run_files(tmp_path, cotrain_cfg):
    """report.md of a co-simulated run: checks, cycles, and per (phase, unit, op) the RTL
    cycles next to the cycle model (n/a where the model has none: programming)."""
    CFG = cotrain_cfg
    from cosim.cotrain import write_report
    (tmp_path / "metrics.json").write_text(json.dumps({
        "switch_step": 3, "total_steps": 8, "low_param_fraction": 0.625, "ranks": [2, 2],
        "test_mse": 0.5, "best_epoch": 2, "final_test_mse": 0.6}))
    (tmp_path / "rtl.json").write_text(json.dumps({
        "op_checks": {"rtl": 7, "checked": 7, "mismatches": 0, "functional_only": 1},
        "rtl_cycles": 1000, "rtl_sim_seconds": 0.5, "rtl_overlap_cycles": 40,
        "chip": chip_for(CFG).to_dict(), "build_seconds": 3.0, "simulation_wall_seconds": 4.0}))
    (tmp_path / "trace.json").write_text(json.dumps([
        {"phase": "low", "unit": "reram", "op": "program", "count": 4, "rtl_cycles": 300},
        {"phase": "low", "unit": "systolic", "op": "matmul", "count": 2, "rtl_cycles": 102,
         "cycles_model": 100},
        {"phase": "low", "unit": "systolic", "op": "matmul", "count": 1, "rtl_cycles": 51,
         "cycles_model": 50},
        {"phase": "eval", "unit": "systolic", "op": "matmul", "count": 1, "cycles_model": 50}]))
    text = write_report(tmp_path, wall_s=9.0).read_text()
    assert "mismatches: 0" in text and "switch step 3 of 8" in text
    assert "| low | reram | program | 4 | 300 | n/a |" in text
    assert "| low | systolic | matmul | 3 | 153 | 150 |" in text
    assert "eval" not in text.split("| phase |")[1]          # no RTL cycles: not listed
    assert "2 k cycles/s" in text and "whole command 9 s" in text
