"""End-to-end co-simulated training: the training loop drives the Verilated chip."""

import dataclasses
import json

import pytest

from cosim.cotrain import chip_for, cotrain
from hw.reram import TileConfig
from hw.systolic import SystolicConfig
from hw.manycore import ManycoreConfig
from sw.data import DataConfig
from sw.model.transformer import ModelConfig
from sw.train.policy import PolicyConfig
from sw.train.trainer import RunConfig, TrainConfig, Trainer

CFG = RunConfig(
    # one layer: its six frozen 16x16 linears (the hpt mapping) on six tiles keep the chip
    # (and its build, shared with tests/test_chip_cocotb.py) small; three systolic cores
    # share the products (hw.placement.assign_products)
    model=ModelConfig(d_model=16, layers=1, heads=2, ffn=16, reduce=8, dropout=0.1),
    data=DataConfig(app="wind", steps=90, stations=4, window=4),
    train=TrainConfig(epochs=3, batch=8, backend="rtl", lr_step_epochs=1, mapping="hpt"),
    policy=PolicyConfig(name="paper", k=3, loss_tol=2.0, weight_tol=1.0, alpha=1e-12,
                        lora_rank=2),
    hw=ManycoreConfig.single(SystolicConfig(rows=4, cols=4, k_depth=16),
                             TileConfig(rows=16, cols=16, write_latency=2, verify_iters=3,
                                        prog_variation=6, verify_tol=1, read_noise=5,
                                        stuck_on_ppm=20_000, adc_bits=6, seed=3,
                                        rows_per_cycle=4), 6, systolic_cores=3))


@pytest.mark.sim
def test_rtl_training_equals_functional_training_bit_for_bit(tmp_path):
    """Same seed, same integers: the co-simulated run (every op on the RTL and checked)
    ends with exactly the functional backend's numbers, and records RTL cycles. The hpt
    mapping: every frozen linear on the RTL tiles, every trainable product on the core."""
    m_rtl = cotrain(CFG, tmp_path / "rtl", quiet=True)
    func = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, backend="functional"))
    m_fn = Trainer(func, tmp_path / "fn", quiet=True).fit()
    assert m_rtl["switch_step"] is not None and m_rtl["low_param_fraction"] > 0
    for key in ("test_mse", "final_test_mse", "switch_step", "low_param_fraction"):
        assert m_rtl[key] == m_fn[key], key
    rtl = json.loads((tmp_path / "rtl" / "rtl.json").read_text())
    checks = rtl["op_checks"]
    assert checks["mismatches"] == 0 and checks["rtl"] == checks["checked"] > 0
    trace = json.loads((tmp_path / "rtl" / "trace.json").read_text())
    low = [r for r in trace if r["phase"] in ("low", "eval")]
    assert {r["phase"] for r in low} == {"low", "eval"}
    ops = [r for r in low if r["unit"] in ("reram", "systolic")]
    groups = [r for r in low if r["unit"] == "chip"]
    # with read noise, evaluation runs on the RTL too: the tiles' noise counters must
    # follow every conversion (without noise it runs on the functional models)
    assert sum(r["count"] for r in ops) == checks["checked"] and checks["functional_only"] == 0
    # hpt mapping: all six frozen linears programmed, the trainable linears on the core,
    # and no GPU work left (the host's remaining kernels are the vector unit's)
    assert sorted(r["layer"] for r in low if r["op"] == "program") == sorted(
        f"layers.0.{n}" for n in ("attn.q", "attn.k", "attn.v", "attn.o", "ff1", "ff2"))
    assert {"embed.0", "embed.2", "reduce.0", "reduce.2", "head"} <= {
        r["layer"] for r in low if r["unit"] == "systolic"}
    assert not [r for r in trace if r["unit"] == "gpu"]
    assert any(r["unit"] == "vector" and r["phase"] == "low" for r in trace)

    def grouped(r):                 # LoRA layers' products run in concurrent groups
        return (r["op"] in ("mvm", "mvm_t") and r["layer"].endswith(("attn.q", "attn.v"))) \
            or r["layer"].endswith((".lora_A", ".lora_B.grad"))
    # RTL cycles go to the op, or to its concurrent group
    assert all(r["rtl_cycles"] > 0 for r in groups + [r for r in ops if not grouped(r)])
    assert not any("rtl_cycles" in r for r in ops if grouped(r))
    # a tile's MVM on the RTL takes what the cycle model says (plus the harness's cycle)
    for r in ops:
        if r["unit"] == "reram" and "rtl_cycles" in r and r["op"] != "program":
            assert r["rtl_cycles"] == r["cycles_model"] + r["rtl_runs"], r
    # concurrent groups (frozen MVM with LoRA-A, MVM_T with the LoRA-B gradients): the
    # core and the tiles overlap; the run lasts as long as the busier unit's cycle model
    assert {g["layer"].rsplit(".", 1)[1] for g in groups} == {"fwd", "bwd"}
    for g in groups:
        # every core as busy as its share of the group's products
        assert g["rtl_systolic_active_cores"] == g["systolic_model_cores"], g
        assert max(g["systolic_model_cores"]) == g["systolic_model"], g
        assert g["rtl_cycles"] == g["cycles_model"] + g["rtl_runs"], g
        assert g["rtl_overlap"] == g["overlap_model"], g
    assert rtl["rtl_overlap_cycles"] == sum(g["rtl_overlap"] for g in groups) > 0
    # what the cost model reads: every systolic cycle of the run as the cycle model says
    from sw.cost.estimate import rtl_check
    check = rtl_check(trace)
    assert check["equal"] and check["systolic_rtl_cycles"] > 0, check


def test_chip_must_hold_the_frozen_weights_and_be_simulable():
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


def test_demo_report_from_run_files(tmp_path):
    """report.md of a co-simulated run: checks, cycles, and per (phase, unit, op) the RTL
    cycles next to the cycle model (n/a where the model has none: programming)."""
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
