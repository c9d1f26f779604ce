"""Cost model: unit costs against hand calculations, and `hpt report` on small runs (the
systolic cycle model against the RTL: tests/cosim/test_cycle_model.py)."""

import json

import pytest

from hw.reram import TileConfig
from hw.systolic import SystolicConfig
from sw.cost import estimate as cost
from hw.manycore import LinkConfig, ManycoreConfig, VectorUnitConfig
from sw.cost.estimate import (Cost, gpu_kernel_cost, gpu_spec, movement_cost, mvm_cost, onchip_cost,
                     program_cost, static_watts, systolic_cost, systolic_cycles,
                     systolic_split_cycles, technology, vector_cost)

TECH = technology()


def test_systolic_cost_by_hand():
    sa = SystolicConfig(rows=4, cols=4, in_width=8, acc_width=32, k_depth=16)
    # 5x7 @ 7x6: tm = tn = 2 output tiles each way, tk = 1 K chunk of 7. The pipelined
    # program L0 L1 C0 L2 C1 R0 L3 C2 R1 C3 R2 R3 is accepted at cycles 0, 8 (load engine
    # busy 1-7), 9, 17 (bank 0 computed until 16), 18, 24 (tile 0's last wavefront issued
    # at 16 passes every PE by 16 + 4 + 4), 26, 27, 33, 35, 42, 50; R3 reads 1 row in
    # cycle 51: 52 cycles (the serial core of earlier versions took 106)
    assert systolic_cycles(sa, 1, 5, 7, 6) == 52
    c = systolic_cost(sa, TECH, 1, 5, 7, 6, clock_hz=1e9)
    assert c.seconds == pytest.approx(52e-9)
    # 210 MACs x (0.2 + 0.1) pJ; SRAM bytes: A 35 x 2 column tiles + B 42 x 2 row tiles
    # (1 byte each) + 30 results x 4 bytes = 274 B x 1.25 pJ
    assert c.joules == pytest.approx((210 * 0.3 + 274 * 1.25) * 1e-12)
    # 16-bit operands: the multiplier costs (16/8)^2 = 4x
    sa16 = SystolicConfig(rows=4, cols=4, in_width=16, acc_width=32, k_depth=16)
    c16 = systolic_cost(sa16, TECH, 3, 5, 7, 6, clock_hz=1e9)
    assert c16.joules == pytest.approx(3 * (210 * (0.8 + 0.1) + (2 * 154 + 120) * 1.25) * 1e-12)
    assert c16.seconds == pytest.approx(3 * 52e-9)
    # several cores: whole products per core (8 on 4 cores: 2 each, one after another) ...
    assert systolic_split_cycles(sa, 4, 8, 5, 7, 6) == 2 * 52
    assert systolic_split_cycles(sa, 4, 9, 5, 7, 6) == 3 * 52
    # ... or one product's output tiles: 2x2 tiles on 4 cores -> one 4x7 @ 7x4 tile each,
    # nothing to overlap: load 1-7, compute accepted at 8 (last wavefront at 15), read
    # accepted at 15 + 8 = 23, rows 24-27: 28
    assert systolic_split_cycles(sa, 4, 1, 5, 7, 6) == 28
    # 2 cores: row tiles split, each core a 4-row (then 1-row) slice of both column tiles:
    # L0 0, L1 8, C0 9 (last wavefront 16), C1 17 (24), R0 24 (rows 25-28), R1 32 -> 37
    assert systolic_split_cycles(sa, 2, 1, 5, 7, 6) == sa.matmul_cycles(4, 7, 6) == 37
    # the closed form for many products is the assignment's busiest core (round-robin)
    from hw.placement import assign_products, core_loads
    for cores in (1, 2, 3, 4, 7):
        for batch in (1, 2, 3, 5, 8, 9):
            for m, k, n in ((5, 7, 6), (1, 1, 1), (17, 3, 9), (4, 20, 33)):
                loads = core_loads(assign_products(sa, cores, [(m, k, n)] * batch))
                assert systolic_split_cycles(sa, cores, batch, m, k, n) == max(loads)
    # the clock and the split set the time, never the energy
    c4 = systolic_cost(sa, TECH, 1, 5, 7, 6, clock_hz=2e9, cores=4)
    assert c4.seconds == pytest.approx(28 / 2e9) and c4.joules == pytest.approx(c.joules)


def test_reram_costs_by_hand():
    t = TileConfig(rows=128, cols=128, cell_bits=2, weight_bits=8, input_bits=8, dac_bits=1,
                   adc_bits=8, verify_iters=8)
    assert (t.input_steps, t.slices) == (8, 4)
    c = mvm_cost(t, TECH, vectors=10, tiles=2)
    # per vector and tile: 8 steps x 4 slices = 32 crossbar reads, each driving 128 DACs,
    # and 32 x 128 = 4096 conversions (ADC + shift-add)
    per = 32 * (30 + 128 * 0.39) + 4096 * (1.5625 + 0.04)
    assert c.joules == pytest.approx(10 * 2 * per * 1e-12)
    # 8 steps of max(100 ns read, 128 conversions / 1.28 GS/s = 100 ns) per vector
    assert c.seconds == pytest.approx(10 * 8 * 100e-9)
    # one more ADC bit doubles the conversion energy (Walden scaling)
    t9 = TileConfig(rows=128, cols=128, adc_bits=9, verify_iters=8)
    per9 = 32 * (30 + 128 * 0.39) + 4096 * (2 * 1.5625 + 0.04)
    assert mvm_cost(t9, TECH, 1, 1).joules == pytest.approx(per9 * 1e-12)
    # a slower ADC paces the step instead of the crossbar read
    slow = technology({"adc_rate_hz": 0.64e9})
    assert mvm_cost(t, slow, 1, 1).seconds == pytest.approx(8 * 200e-9)
    # programming: 128 rows x 8 write-verify rounds of (10 ns pulse + 100 ns verify read)
    p = program_cost(t, TECH, rows=128, pulses=1000)
    assert p.seconds == pytest.approx(128 * 8 * 110e-9)
    # every round's verify read reads the row on each of the block's crossbars
    assert t.crossbars == 4
    assert p.joules == pytest.approx((1000 * 6.7 + 128 * 8 * 4 * 30) * 1e-12)
    # copies split a call's vectors (ceil), energy unchanged; calls add up
    assert mvm_cost(t, TECH, 10, 2, copies=2).seconds == pytest.approx(c.seconds / 2)
    assert mvm_cost(t, TECH, 10, 2, copies=4).seconds == pytest.approx(3 * 8 * 100e-9)
    assert mvm_cost(t, TECH, 10, 2, copies=4).joules == pytest.approx(c.joules)
    assert mvm_cost(t, TECH, 10, 2, calls=3).joules == pytest.approx(3 * c.joules)
    # every copy costs its pulses; tiles program in parallel: 3 blocks one after another
    assert program_cost(t, TECH, 128, 1000, copies=2).joules == pytest.approx(2 * p.joules)
    assert program_cost(t, TECH, 128, 1000, serial_blocks=3).seconds == pytest.approx(
        3 * 128 * 8 * 110e-9)


def test_movement_and_gpu_by_hand():
    links = LinkConfig()
    m = movement_cost(links, 1e6)
    assert m.seconds == pytest.approx(1e6 / 32e9) and m.joules == pytest.approx(1e6 * 162.5e-12)
    # on chip: one vertical link (0.05 pJ/bit) and 3 NoC hops (0.5 pJ/bit each), at the
    # slower of 256 GB/s (vertical) and 512 GB/s (NoC)
    o = onchip_cost(links, 1e6)
    assert o.seconds == pytest.approx(1e6 / 256e9)
    assert o.joules == pytest.approx(1e6 * 8 * (0.05 + 3 * 0.5) * 1e-12)
    a100 = gpu_spec("A100-SXM4-80GB")
    # compute-bound kernel: 19.5 GFLOP at 19.5 TFLOP/s = 1 ms, plus 50 us per op; power
    # floor 110 W + 290 W x (1 ms busy / 1.05 ms)
    k = gpu_kernel_cost(a100, TECH, flops=19.5e9, nbytes=1e3)
    assert k.seconds == pytest.approx(1e-3 + 50e-6)
    assert k.joules == pytest.approx(k.seconds * (110 + 290 * 1e-3 / (1e-3 + 50e-6)))
    # memory-bound: 2.039 GB at 2039 GB/s = 1 ms
    assert gpu_kernel_cost(a100, TECH, 1.0, 2.039e9).seconds == pytest.approx(1e-3 + 50e-6)
    # an empty kernel is all overhead, at the floor power
    e = gpu_kernel_cost(a100, TECH, 0, 0)
    assert e.joules == pytest.approx(50e-6 * 110)
    with pytest.raises(ValueError, match="no peak for dtype 'int4'"):
        gpu_kernel_cost(a100, TECH, 1, 1, dtype="int4")
    assert (Cost(1, 2) + Cost(3, 4)).to_dict() == {"seconds": 4, "joules": 6}


def test_vector_unit_and_static_power_by_hand():
    hw = ManycoreConfig(systolic=SystolicConfig(rows=4, cols=8), systolic_cores=2,
                        reram_cores=3, vector=VectorUnitConfig(lanes=32), clock_hz=1e9)
    # softmax: per element compare 1 + add 2 + exp 1 (4 cycles) + mul 1 = 8 lane-cycles;
    # 1000 elements on 2 units x 32 lanes = 125 cycles
    v = vector_cost(hw, TECH, "_softmax", 1000)
    assert v.seconds == pytest.approx(125e-9)
    # energy: compare and adds at the fp32 add (0.9 pJ), exp 14.8, mul 3.7, plus 12 B of
    # SRAM at 1.25 pJ/B per element
    assert v.joules == pytest.approx(1000 * (3 * 0.9 + 14.8 + 3.7 + 12 * 1.25) * 1e-12)
    # in-place and foreach variants count as their op
    assert vector_cost(hw, TECH, "_foreach_mul_", 64).joules == pytest.approx(
        vector_cost(hw, TECH, "mul", 64).joules)
    with pytest.raises(ValueError, match="no vector-unit cost for kernel 'erfinv'"):
        vector_cost(hw, TECH, "erfinv", 1)
    no_exp = ManycoreConfig(vector=VectorUnitConfig(ops=("add", "mul", "cmp")))
    with pytest.raises(ValueError, match="does not offer 'exp'"):
        vector_cost(no_exp, TECH, "_softmax", 1)
    # static: crossbars used x 0.34 mW; 2 cores x 32 PEs x 60 uW; 2 vector units x 10 mW;
    # (3 ReRAM + 2 systolic cores) routers x 20 mW
    w = static_watts(hw, TECH, crossbars_used=100)
    assert w == pytest.approx({"crossbars": 0.034, "systolic": 2 * 32 * 6e-5,
                               "vector": 0.02, "routers": 0.1})


def test_constants_have_sources_and_overrides_are_checked(tmp_path):
    for name, c in cost.TECH.items():
        assert c.source and c.unit is not None, name
    assert technology({"e_adc_pj": "3"})["e_adc_pj"] == 3.0
    with pytest.raises(ValueError, match="unknown technology constant 'e_adc'"):
        technology({"e_adc": 1})
    with pytest.raises(ValueError, match="'xbar_read_s' must be a number"):
        technology({"xbar_read_s": "fast"})
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        technology({"xbar_read_s": -1})
    bad = tmp_path / "tech.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="tech.json: cannot read technology overrides"):
        technology(bad)
    with pytest.raises(ValueError, match="unknown GPU 'B200'"):
        gpu_spec("B200")
    specs = tmp_path / "gpus.json"
    specs.write_text('{"X": {"peak_flops": {}}')
    with pytest.raises(ValueError, match="gpus.json: cannot read GPU specs"):
        gpu_spec("X", specs)
    specs.write_text('{"X": {"peak_flops": {}, "mem_bw": 1}}')
    with pytest.raises(ValueError, match="GPU 'X' in .*gpus.json has no 'power_w'"):
        gpu_spec("X", specs)


# ---- profile and report ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A full, a paper and an intrinsic-dim run of a small model (functional backend)."""
    tmp_path = tmp_path_factory.mktemp("runs")
    from hw.manycore import ManycoreConfig
    from sw.data import DataConfig
    from sw.model.transformer import ModelConfig
    from sw.train.policy import PolicyConfig
    from sw.train.trainer import RunConfig, TrainConfig, Trainer
    small = dict(model=ModelConfig(d_model=16, layers=2, heads=2, ffn=16, reduce=8, dropout=0.1),
                 data=DataConfig(app="wind", steps=200, stations=6, window=4),
                 hw=ManycoreConfig.single(SystolicConfig(rows=8, cols=8, k_depth=16),
                                          TileConfig(rows=16, cols=16, write_latency=1), 64))
    policies = {"full": PolicyConfig(name="full"),
                "paper": PolicyConfig(name="paper", k=3, loss_tol=2.0, weight_tol=1.0,
                                      alpha=1e-12, lora_rank=2),
                "intrinsic-dim": PolicyConfig(name="intrinsic-dim", k=3, snapshots=4,
                                              stable_checks=1, loss_tol=2.0, min_rank=1,
                                              max_rank=4)}
    dirs = []
    for name, pol in policies.items():
        cfg = RunConfig(train=TrainConfig(epochs=5, batch=16, backend="functional",
                                          lr_step_epochs=2), policy=pol, **small)
        d = tmp_path / name
        Trainer(cfg, d, quiet=True).fit()
        dirs.append(d)
    return dirs


def test_profile_counts_the_gpu_kernels(runs):
    import dataclasses

    from sw.cost.estimate import profile_step
    from sw.train.trainer import RunConfig
    d = runs[1]
    cfg = RunConfig.from_dict(json.loads((d / "config.json").read_text()))
    # the hpt mapping leaves no product on the host: not one FLOP of matrix work
    assert cfg.train.mapping == "hpt"
    assert sum(k["flops"] for k in profile_step(cfg, "low", [2, 2])) == 0
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mapping="qv"))
    full = profile_step(cfg, "full")
    low = profile_step(cfg, "low", [2, 2])
    f_full, f_low = sum(k["flops"] for k in full), sum(k["flops"] for k in low)
    # every frozen Q/V product, forward and backward, is in the full step and not in the
    # low one: at least 2 x (forward + input grad + weight grad) x 16x16 x tokens
    tokens = cfg.train.batch * cfg.data.stations
    assert f_full - f_low >= 2 * cfg.model.layers * 3 * 2 * 16 * 16 * tokens
    assert 0 < f_low < f_full and len(low) > 0
    assert all(k["bytes"] > 0 for k in full)


def test_report_writes_every_file_and_consistent_numbers(runs, tmp_path):
    import shutil

    from hpt.cli import main
    dirs = [tmp_path / d.name for d in runs]
    for src, dst in zip(runs, dirs):
        shutil.copytree(src, dst)
    # as if the full run had trained on CUDA: 10 measured steps of 5 ms and 2 J
    m = json.loads((dirs[0] / "metrics.json").read_text())
    m["gpu_measured"] = {"device": "test", "steps": 10, "seconds": 0.05, "joules": 20.0}
    (dirs[0] / "metrics.json").write_text(json.dumps(m))
    out = tmp_path / "report"
    assert main(["report", *map(str, dirs), "--out", str(out), "--set", "e_adc_pj=2"]) == 0
    for f in ("report.md", "report.json", "breakdown.png", "loss.png", "intrinsic_dim.png",
              "reram_wear.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    doc = json.loads((out / "report.json").read_text())
    cases = {c["case"]: c for c in doc["cases"]}
    assert set(cases) == {"gpu-only", "hpt-paper", "hpt-intrinsic-dim"}
    assert doc["assumptions"]["technology"]["e_adc_pj"] == {
        **doc["assumptions"]["technology"]["e_adc_pj"], "value": 2.0, "overridden": True}
    for run in doc["runs"]:
        parts = sum(b["seconds"] for b in run["breakdown"]) - run["overlap_s"]
        assert run["hpt"]["seconds"] == pytest.approx(parts)
        f = run["low_param_fraction"]
        assert f == pytest.approx(run["low_steps"] / run["total_steps"])
        if run["policy"] != "full":
            # the hpt mapping: no GPU block after the switch; the vector unit and the
            # links instead; static energy over the low phase's time
            units = {(b["phase"], b["unit"]) for b in run["breakdown"]}
            assert ("low", "gpu") not in units
            assert {("low", "vector"), ("low", "links"), ("low", "static")} <= units
            assert run["ceiling"] == pytest.approx(1 / (1 - f))
            low_s = sum(b["seconds"] for b in run["breakdown"]
                        if b["phase"] in ("low", "switch")) - run["overlap_s"]
            assert run["low_step"]["seconds"] == pytest.approx(low_s / run["low_steps"])
            assert run["step_speedup"] == pytest.approx(
                run["gpu_full_step"]["seconds"] / run["low_step"]["seconds"])
            static = next(b for b in run["breakdown"] if b["unit"] == "static")
            assert static["joules"] == pytest.approx(sum(run["static_w"].values()) * low_s)
            assert run["gpu_idle_low_j"] == pytest.approx(110.0 * low_s)   # A100 floor
        assert run["gpu_only"]["seconds"] == pytest.approx(
            run["gpu_full_step"]["seconds"] * run["total_steps"])
        if run["policy"] == "paper":          # its LoRA trial ran k steps per trial
            assert run["trial_steps"] > 0 and run["trial_steps"] % 3 == 0
            assert any(b["unit"] == "gpu LoRA trial" and b["seconds"] > 0
                       for b in run["breakdown"])
        if run["policy"] != "full":
            assert run["switch_step"] is not None
            assert run["overlap_s"] > 0            # concurrent groups were recorded
            c = cases[f"hpt-{run['policy']}"]
            assert c["speedup"] == pytest.approx(cases["gpu-only"]["seconds"] / c["seconds"])
    cal = doc["runs"][0]["calibrated"]
    assert cal["gpu_only"]["seconds"] == pytest.approx(0.005 * doc["runs"][0]["total_steps"])
    assert cal["gpu_only"]["joules"] == pytest.approx(2.0 * doc["runs"][0]["total_steps"])
    assert "Calibrated on the GPU" in (out / "report.md").read_text()
    assert doc["reram_wear"]["hpt_max_pulses_per_cell"] >= 1
    md = (out / "report.md").read_text()
    assert "A100-SXM4-80GB" in md and "Shafiee" in md and "Horowitz" in md
    assert main(["report", str(tmp_path / "nope"), "--out", str(out)]) == 2


def test_compare_trains_apps_and_policies_then_reports(tmp_path, capsys):
    from hpt.cli import main
    # the model flag reaches every run; the flow only the weather app (none here)
    assert main(["compare", "--apps", "wind", "--policies", "full", "paper", "--epochs", "1",
                 "--jobs", "1", "--engine", "serial", "--attn-bias", "--flow-kmh", "40",
                 "--out", str(tmp_path)]) == 0
    for d in ("wind_tiny_full_s0", "wind_tiny_paper_hpt_s0", "wind_tiny_paper_qv_s0"):
        assert (tmp_path / d / "metrics.json").is_file(), d
        cfg = json.loads((tmp_path / d / "config.json").read_text())
        assert cfg["model"]["attn_bias"] is True and cfg["data"]["flow_kmh"] == 0, d
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [c["case"] for c in doc["cases"]] == ["gpu-only", "hpt-paper", "hpt-paper (qv)"]
    assert {r["manycore"]["reram_cores"] for r in doc["runs"]} == {16}     # atleus
    assert "wrote" in capsys.readouterr().out


def test_sensitivity_varies_one_factor_at_a_time(runs, tmp_path):
    from hpt.cli import main
    from sw.cost.report import SENSITIVITY
    out = tmp_path / "sens"
    assert main(["sensitivity", *map(str, runs), "--out", str(out)]) == 0
    doc = json.loads((out / "sensitivity.json").read_text())
    hpt_runs = {r["run"] for r in doc["rows"]}
    # the full run is no HpT run (the small model is no named preset)
    assert hpt_runs == {"wind/paper (custom preset)", "wind/intrinsic-dim (custom preset)"}
    assert len(doc["rows"]) == 2 * sum(len(v) for *_, v in SENSITIVITY)

    def at(name, value, run="wind/paper (custom preset)"):
        return next(r for r in doc["rows"] if r["name"] == name and r["value"] == value
                    and r["run"] == run)
    # more copies and more cores never slow the low phase; a cheaper GPU op helps the GPU
    assert at("replication", 1)["speedup"] <= at("replication", None)["speedup"]
    assert at("systolic_cores", 1)["speedup"] <= at("systolic_cores", 16)["speedup"]
    assert at("gpu_op_overhead_s", 5e-6)["speedup"] < at("gpu_op_overhead_s", 50e-6)["speedup"]
    # the ceiling does not depend on the hardware
    assert len({r["ceiling"] for r in doc["rows"] if r["run"] == at("replication", 1)["run"]}) == 1
    md = (out / "sensitivity.md").read_text()
    assert "| GPU per-op overhead (s) | 5e-06 |" in md and "ceiling 1/(1-f)" in md
    assert main(["sensitivity", str(runs[0]), "--out", str(out)]) == 2      # full run only
