"""End-to-end co-simulated training: the training loop drives the Verilated chip."""

import dataclasses
import json

from cosim.cotrain import cotrain
from sw.train.trainer import Trainer


def test_rtl_training_equals_functional_training_bit_for_bit(tmp_path, cotrain_cfg):
    """Same seed, same integers: the co-simulated run (every op on the RTL and checked)
    ends with exactly the functional backend's numbers, and records RTL cycles. The hpt
    mapping: every frozen linear on the RTL tiles, every trainable product on the core."""
    CFG = cotrain_cfg
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
