"""Training recipe: outputs, determinism, exact resume, both phases, both backends."""

import json

import pytest

from hw.reram import TileConfig
from hw.systolic import SystolicConfig
from hw.manycore import ManycoreConfig
from hpt.cli import main
from sw.data import DataConfig
from sw.model.transformer import ModelConfig
from sw.train.policy import PolicyConfig
from sw.train.trainer import RunConfig, TrainConfig, Trainer

SMALL = dict(model=ModelConfig(d_model=16, layers=2, heads=2, ffn=16, reduce=8, dropout=0.1),
             data=DataConfig(app="wind", steps=200, stations=6, window=4),
             hw=ManycoreConfig.single(SystolicConfig(rows=8, cols=8, k_depth=16),
                                      TileConfig(rows=16, cols=16, write_latency=1), 64))
# loose thresholds so the paper test (plateaus, then the LoRA trial and t-test) fires early
EAGER = PolicyConfig(name="paper", k=3, loss_tol=2.0, weight_tol=1.0, alpha=1e-12, lora_rank=2)


def cfg(policy=EAGER, backend="torch", epochs=4, seed=0):
    return RunConfig(train=TrainConfig(epochs=epochs, batch=16, seed=seed, backend=backend,
                                       lr_step_epochs=2), policy=policy, **SMALL)


def test_outputs_and_switch(tmp_path):
    m = Trainer(cfg(), tmp_path, quiet=True).fit()
    for f in ("metrics.json", "trace.json", "history.json", "loss.png", "checkpoint.pt",
              "config.json"):
        assert (tmp_path / f).is_file(), f
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("test_mse", "test_mae", "final_test_mse", "switch_step", "low_param_fraction",
                "ranks", "time_per_phase_s"):
        assert key in saved
    assert m["switch_step"] is not None and 0 < m["low_param_fraction"] < 1
    assert m["ranks"] == [2, 2]
    hist = json.loads((tmp_path / "history.json").read_text())
    assert any("p" in e for e in hist["policy"])             # the t-test ran
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert any(r["op"] == "program" and r["phase"] == "low" for r in trace)


def test_same_seed_same_numbers_and_exact_resume(tmp_path):
    a = Trainer(cfg(), tmp_path / "a", quiet=True).fit()
    b = Trainer(cfg(), tmp_path / "b", quiet=True).fit()
    assert a == {**b, "time_per_phase_s": a["time_per_phase_s"]}
    t = Trainer(cfg(), tmp_path / "c", quiet=True)
    assert t.fit(until_epoch=2) is None                     # as if stopped after epoch 2
    c = Trainer.resume(tmp_path / "c", quiet=True).fit()
    for key in ("test_mse", "final_test_mse", "switch_step", "low_param_fraction", "ranks"):
        assert c[key] == a[key], key
    ha = json.loads((tmp_path / "a" / "history.json").read_text())["step_loss"]
    hc = json.loads((tmp_path / "c" / "history.json").read_text())["step_loss"]
    assert ha == hc


def test_exact_resume_with_read_noise_on_the_functional_backend(tmp_path):
    """Read noise is salted by the tiles' conversion counters: a resumed run must carry
    them over, not restart them when it re-programs the frozen weights."""
    noisy = dict(SMALL, hw=ManycoreConfig.single(SMALL["hw"].systolic,
                                                 TileConfig(rows=16, cols=16, write_latency=1,
                                                            read_noise=24, adc_bits=6), 64))
    c = RunConfig(train=TrainConfig(epochs=3, batch=16, backend="functional"),
                  policy=PolicyConfig(name="lora", lora_rank=2), **noisy)
    a = Trainer(c, tmp_path / "a", quiet=True).fit()
    assert Trainer(c, tmp_path / "b", quiet=True).fit(until_epoch=1) is None
    b = Trainer.resume(tmp_path / "b", quiet=True).fit()
    assert b["test_mse"] == a["test_mse"] and b["final_test_mse"] == a["final_test_mse"]
    ha = json.loads((tmp_path / "a" / "history.json").read_text())["step_loss"]
    hb = json.loads((tmp_path / "b" / "history.json").read_text())["step_loss"]
    assert ha == hb


@pytest.mark.parametrize("policy,switch", [("full", None), ("lora", 0)])
def test_baselines(tmp_path, policy, switch):
    m = Trainer(cfg(PolicyConfig(name=policy, lora_rank=2), epochs=2), tmp_path, quiet=True).fit()
    assert m["switch_step"] == switch
    assert m["low_param_fraction"] == (0.0 if switch is None else 1.0)


@pytest.mark.parametrize("at", [1, 7, 13])
def test_switch_at_is_honoured_exactly(tmp_path, at):
    """The control policy: full training for exactly ``at`` iterations, then LoRA."""
    m = Trainer(cfg(PolicyConfig(name="switch-at", switch_at=at, lora_rank=2), epochs=2),
                tmp_path, quiet=True).fit()
    assert m["switch_step"] == at and m["ranks"] == [2, 2]
    assert m["low_param_fraction"] == (m["total_steps"] - at) / m["total_steps"]
    steps = json.loads((tmp_path / "history.json").read_text())["step_loss"]
    assert [phase for _, _, phase in steps] == ["full"] * at + ["low"] * (len(steps) - at)


def test_early_policy_switches_after_a_probe(tmp_path):
    pol = PolicyConfig(name="early", early_k=3, early_snapshots=3, early_stable=1,
                       loss_tol=2.0, probe_tol=0.5, min_rank=1, max_rank=4)
    m = Trainer(cfg(pol, epochs=3), tmp_path, quiet=True).fit()
    hist = json.loads((tmp_path / "history.json").read_text())["policy"]
    trials = [h for h in hist if "trial" in h]
    assert m["switch_step"] is not None and m["switch_step"] % 3 == 0
    assert trials and trials[-1]["switch"] and trials[-1]["step"] == m["switch_step"]
    assert all(1 <= r <= 4 for r in m["ranks"])
    # the checkpoint resumes the policy exactly (same switch, same numbers)
    t = Trainer(cfg(pol, epochs=3), tmp_path / "r", quiet=True)
    assert t.fit(until_epoch=1) is None
    r = Trainer.resume(tmp_path / "r", quiet=True).fit()
    assert (r["switch_step"], r["test_mse"]) == (m["switch_step"], m["test_mse"])


def test_cli_switch_at(tmp_path, capsys):
    args = ["train", "--app", "wind", "--steps", "120", "--stations", "4", "--window", "3",
            "--epochs", "1", "--batch", "16", "--manycore", "atleus"]
    assert main(args + ["--switch-at", "3", "--out", str(tmp_path / "a")]) == 0
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert saved["switch_step"] == 3 and saved["policy"] == "switch-at"
    assert main(args + ["--switch-at", "3", "--policy", "full", "--out", str(tmp_path / "b")]) == 2
    assert "give --policy or --switch-at, not both" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    assert main(args + ["--switch-at", "3", "--attn-bias", "--out", str(tmp_path / "c")]) == 0
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    assert cfg["model"]["attn_bias"] is True
    assert json.loads((tmp_path / "a" / "config.json").read_text())["model"]["attn_bias"] is False
    assert main(args + ["--flow-kmh", "30", "--out", str(tmp_path / "d")]) == 2
    assert "DataConfig.flow_kmh applies to the built-in weather app only" in \
        capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    weather = [a if a != "wind" else "weather" for a in args]
    assert main(weather + ["--flow-kmh", "30", "--out", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "config.json").read_text())["data"]["flow_kmh"] == 30.0


def test_lora_from_the_start_is_the_frozen_random_control(tmp_path):
    """``lora`` trains only the adapters and the embedding, reduction and head; the encoder
    weights stay at their random initialisation."""
    import torch
    t = Trainer(cfg(PolicyConfig(name="lora", lora_rank=2), epochs=1), tmp_path, quiet=True)
    adapter = lambda n: n.endswith((".A", ".B"))            # noqa: E731 (LoRA factors)
    init = {n: p.detach().clone() for n, p in t.model.named_parameters() if "layers." in n
            and not adapter(n)}
    t.fit()
    trainable = {n for n, p in t.model.named_parameters() if p.requires_grad}
    assert trainable and all(adapter(n) or n.startswith(("embed.", "reduce.", "head."))
                             for n in trainable), sorted(trainable)
    assert {n for n in trainable if adapter(n)} == {
        f"layers.{i}.attn.{m}.{f}" for i in (0, 1) for m in "qv" for f in "AB"}
    for n, p in t.model.named_parameters():
        if n in init:
            assert torch.equal(p.detach(), init[n]), n


def test_functional_backend_and_intrinsic_dim(tmp_path):
    pol = PolicyConfig(name="intrinsic-dim", k=3, snapshots=4, stable_checks=1, loss_tol=2.0,
                       min_rank=1, max_rank=4)
    m = Trainer(cfg(pol, backend="functional", epochs=5), tmp_path, quiet=True).fit()
    assert m["switch_step"] is not None
    assert all(1 <= r <= 4 for r in m["ranks"])
    hist = json.loads((tmp_path / "history.json").read_text())["policy"]
    assert any(h.get("dims") for h in hist)
    assert m["test_mse"] < 2.0


def test_cli_needs_exactly_one_source(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path)]) == 2
    assert "exactly one of --app and --data" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_stop_mid_epoch_checkpoints_and_resumes_exactly(tmp_path):
    """Ctrl-C (Trainer.stop) stops after the current step, mid-epoch, with a checkpoint;
    the resumed run skips the batches already trained and ends bit-identical."""
    from sw.train.trainer import Interrupted
    a = Trainer(cfg(), tmp_path / "a", quiet=True).fit()
    t = Trainer(cfg(), tmp_path / "b", quiet=True)
    per_epoch = -(-len(t.data.train.X) // t.cfg.train.batch)
    stop_at = per_epoch + per_epoch // 2                      # the middle of epoch 2
    policy_step = t._policy_step

    def step_then_maybe_stop():
        policy_step()
        if t.step == stop_at:
            t.stop()
    t._policy_step = step_then_maybe_stop
    with pytest.raises(Interrupted):
        t.fit()
    assert t.epoch == 1 and t.epoch_step == stop_at - per_epoch
    b = Trainer.resume(tmp_path / "b", quiet=True).fit()
    for key in ("test_mse", "final_test_mse", "switch_step", "low_param_fraction", "ranks"):
        assert b[key] == a[key], key
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "history.json").read_text())
    assert ha["step_loss"] == hb["step_loss"] and ha["epochs"] == hb["epochs"]


def test_stop_file_stops_a_run(tmp_path):
    """The simulator of an rtl run cannot be reached by a signal handler of the launching
    process: a STOP file in the run directory does the same."""
    from sw.train.trainer import Interrupted
    t = Trainer(cfg(), tmp_path, quiet=True)
    (tmp_path / "STOP").touch()
    with pytest.raises(Interrupted) as exc:
        t.fit()
    assert exc.value.step == 1 and not (tmp_path / "STOP").exists()
    assert (tmp_path / "checkpoint.pt").is_file()


def test_waves_need_the_rtl_backend(tmp_path, capsys):
    assert main(["train", "--app", "wind", "--out", str(tmp_path), "--waves",
                 str(tmp_path / "w.fst")]) == 2
    assert "--waves needs --backend rtl" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.pt").exists()


@pytest.mark.parametrize("mapping", ["hpt", "qv"])
def test_low_phase_trace_has_no_gpu_rows_under_hpt(tmp_path, mapping):
    """After the switch the hpt mapping leaves nothing on the GPU: the host's remaining
    kernels are the vector unit's (element counts per kind); under qv they are the GPU's."""
    c = RunConfig(train=TrainConfig(epochs=1, batch=16, backend="functional", mapping=mapping),
                  policy=PolicyConfig(name="lora", lora_rank=2), **SMALL)
    Trainer(c, tmp_path, quiet=True).fit()
    low = [r for r in json.loads((tmp_path / "trace.json").read_text()) if r["phase"] == "low"]
    units = {r["unit"] for r in low}
    host = "vector" if mapping == "hpt" else "gpu"
    assert units == {"reram", "systolic", "chip", host}
    rows = [r for r in low if r["unit"] == host]
    assert {"_softmax", "native_layer_norm", "mse_loss"} <= {r["op"] for r in rows}
    assert all(r["elements"] > 0 for r in rows)
    matrix = sum(r["flops"] for r in rows)          # products left on the host
    assert (matrix == 0) if mapping == "hpt" else (matrix > 0)


def test_cli_manycore_flags(tmp_path, capsys):
    args = ["train", "--app", "wind", "--steps", "120", "--stations", "3", "--epochs", "1",
            "--policy", "lora", "--backend", "functional"]
    assert main(args + ["--manycore", "small", "--out", str(tmp_path / "small")]) == 2
    err = capsys.readouterr().err
    # 2 layers x 6 frozen 64x64..128 linears need 12 of the small chip's 7 128x128 blocks
    assert "frozen matrix 'layers.1.attn.k' (64x64, 1 block of 128x128) does not fit" in err
    assert "all frozen matrices need 12 blocks, 5 more than the ReRAM holds: 5 ReRAM " \
        "tile(s) short" in err and not (tmp_path / "small").exists()
    assert main(args + ["--manycore", "small", "--mapping", "qv", "--hw", "systolic_cores=2",
                        "--out", str(tmp_path / "qv")]) == 0
    saved = json.loads((tmp_path / "qv" / "config.json").read_text())
    assert saved["train"]["mapping"] == "qv" and saved["hw"]["systolic_cores"] == 2
    assert main(args + ["--hw", "tile.adc=3", "--out", str(tmp_path / "bad")]) == 2
    assert "unknown ManycoreConfig field tile.'adc'" in capsys.readouterr().err
    assert main(args + ["--lora-targets", "q,x", "--out", str(tmp_path / "bad")]) == 2
    assert "lora_targets must be distinct names" in capsys.readouterr().err
    # a malformed data file: one error naming file and line, and no run folder left behind
    data = tmp_path / "bad.csv"
    data.write_text("1,2,3\n4,5\n")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "bad_data")]) == 2
    assert "bad.csv:2: expected 3 values, found 2" in capsys.readouterr().err
    assert not (tmp_path / "bad_data").exists()


def test_module_ranks_train_resume_and_cost(tmp_path):
    """The early policy with a rank per adapted module (q, v and ff1 adapted): each
    module gets its own measured rank, the run trains exactly those adapters, resumes to
    the same numbers, and the cost model profiles its steps with the same ranks."""
    from sw.cost.estimate import gpu_spec, run_cost, technology
    from sw.model.hybrid import lora_layers
    pol = PolicyConfig(name="early", early_k=3, early_snapshots=3, early_stable=1,
                       loss_tol=2.0, probe_tol=0.5, min_rank=1, max_rank=4, ranks="module",
                       lora_targets=("q", "v", "ff1"))
    m = Trainer(cfg(pol, epochs=3), tmp_path / "a", quiet=True).fit()
    assert m["switch_step"] is not None and m["rank_mode"] == "module"
    assert [sorted(r) for r in m["ranks"]] == [["ff1", "q", "v"]] * 2
    assert all(1 <= v <= 4 for r in m["ranks"] for v in r.values())
    t = Trainer.resume(tmp_path / "a", quiet=True)
    got = {lo.name: lo.A.shape[0] for lo in lora_layers(t.model)}
    from sw.model.hybrid import frozen_name
    assert got == {frozen_name(i, k): v for i, r in enumerate(m["ranks"]) for k, v in r.items()}
    r = Trainer(cfg(pol, epochs=3), tmp_path / "r", quiet=True)
    assert r.fit(until_epoch=1) is None
    again = Trainer.resume(tmp_path / "r", quiet=True).fit()
    assert (again["ranks"], again["test_mse"]) == (m["ranks"], m["test_mse"])
    c = run_cost(tmp_path / "a", gpu_spec("A100-SXM4-80GB"), technology())
    assert c["trial_steps"] > 0 and c["hpt"]["seconds"] > 0


def test_cosine_factor_warms_up_then_decays_to_min_lr():
    t = TrainConfig(schedule="cosine", warmup=4, min_lr=0.2)
    f = [t.lr_factor(s, 21) for s in range(23)]
    assert f[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]               # linear warm-up, then the top
    assert all(a >= b for a, b in zip(f[3:], f[4:]))          # then never rises
    assert f[20] == pytest.approx(0.2) and f[22] == pytest.approx(0.2)   # last iteration: min
    assert f[4 + 8] == pytest.approx(0.2 + 0.8 * 0.5)         # half-way down the cosine
    assert TrainConfig(schedule="cosine").lr_factor(0, 10) == 1.0     # no warm-up


@pytest.mark.parametrize("bad, match", [
    (dict(schedule="linear"), "TrainConfig.schedule"),
    (dict(warmup=3), "TrainConfig.warmup needs schedule='cosine'"),
    (dict(schedule="cosine", warmup=-1), "TrainConfig.warmup"),
    (dict(schedule="cosine", min_lr=1.5), "TrainConfig.min_lr"),
    (dict(clip=0.0), "TrainConfig.clip"),
    (dict(lr=0.0), "TrainConfig.lr")])
def test_recipe_fields_are_validated(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**bad)


def test_preset_recipes():
    assert TrainConfig.recipe("tiny") == TrainConfig()
    paper = TrainConfig.recipe("paper", epochs=3)
    assert (paper.schedule, paper.clip, paper.epochs) == ("cosine", 1.0, 3)
    assert paper.lr < TrainConfig().lr and paper.warmup > 0
    with pytest.raises(ValueError, match="no training recipe for preset 'huge'"):
        TrainConfig.recipe("huge")


def _cosine(policy, clip=None, epochs=4):
    return RunConfig(train=TrainConfig(epochs=epochs, batch=16, schedule="cosine", warmup=3,
                                       min_lr=0.05, clip=clip), policy=policy, **SMALL)


def test_cosine_schedule_runs_through_both_phases_and_resumes_exactly(tmp_path):
    c = _cosine(PolicyConfig(name="switch-at", switch_at=9, lora_rank=2))
    tr = Trainer(c, tmp_path / "a", quiet=True)
    a = tr.fit()
    total = c.train.epochs * tr.per_epoch
    lrs = [e["lr"] for e in json.loads((tmp_path / "a" / "history.json").read_text())["epochs"]]
    # each epoch's recorded rate is the one its last iteration used, before and after the
    # switch (the low phase follows the same schedule instead of keeping its first rate)
    assert lrs == pytest.approx([1e-3 * c.train.lr_factor(e * tr.per_epoch - 1, total)
                                 for e in range(1, c.train.epochs + 1)])
    assert a["switch_step"] == 9 < tr.per_epoch * 2 and lrs[-1] == pytest.approx(5e-5)
    assert Trainer(c, tmp_path / "b", quiet=True).fit(until_epoch=2) is None
    b = Trainer.resume(tmp_path / "b", quiet=True).fit()
    for key in ("test_mse", "final_test_mse", "switch_step"):
        assert a[key] == b[key], key


def test_clip_bounds_every_gradient_norm(tmp_path):
    import torch
    norms = {}
    for clip in (None, 1e-3):
        tr = Trainer(_cosine(PolicyConfig(name="full"), clip=clip, epochs=1), tmp_path / str(clip),
                     quiet=True)
        tr.fit()
        grads = [p.grad for p in tr.model.parameters() if p.grad is not None]
        norms[clip] = float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(g) for g in grads])))
    assert norms[None] > 1e-2 and norms[1e-3] <= 1e-3 * (1 + 1e-5)


def test_cli_recipe_flags_and_the_paper_preset_recipe(tmp_path, capsys):
    main(["train", "--app", "wind", "--steps", "120", "--stations", "4", "--epochs", "1",
          "--policy", "full", "--schedule", "cosine", "--warmup", "2", "--clip", "0.5",
          "--lr", "3e-4", "--out", str(tmp_path / "r"), "--quiet"])
    t = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
    assert (t["schedule"], t["warmup"], t["clip"], t["lr"]) == ("cosine", 2, 0.5, 3e-4)
    from hpt.cli import _recipe, build_parser
    args = build_parser().parse_args(["train", "--app", "wind", "--preset", "paper", "--clip",
                                      "0", "--schedule", "step", "--warmup", "0", "--out", "x"])
    # the paper preset trained with the tiny recipe, as the cost report's older rows were
    old = TrainConfig.recipe("paper", **_recipe(args), lr=1e-3)
    assert (old.clip, old.schedule, old.warmup) == (None, "step", 0)
    with pytest.raises(SystemExit):
        main(["train", "--app", "wind", "--schedule", "linear", "--out", str(tmp_path / "x")])
    assert "--schedule" in capsys.readouterr().err


def test_headroom_policy_in_training_resumes_and_costs_its_evaluations(tmp_path):
    """The headroom policy evaluates the full model on held-out validation windows at
    every check, switches once the projected headroom is small, resumes to the same
    numbers, and the cost model charges its evaluation batches to HpT's GPU phase."""
    from sw.cost.estimate import gpu_spec, run_cost, technology
    pol = PolicyConfig(name="headroom", k=3, held_out=20, headroom_tol=0.9, headroom_stable=1,
                       lora_rank=2)
    m = Trainer(cfg(pol, epochs=3), tmp_path / "a", quiet=True).fit()
    hist = json.loads((tmp_path / "a" / "history.json").read_text())["policy"]
    checks = [h for h in hist if "held_out_loss" in h]
    assert checks and [h["step"] for h in checks] == list(range(3, 3 * len(checks) + 1, 3))
    assert all(h["held_out_batches"] == 2 for h in checks)        # 20 windows, batch 16
    assert m["switch_step"] == checks[-1]["step"] and checks[-1]["below"] == 1
    assert checks[-1]["headroom"] is not None and checks[-1]["headroom"] <= 0.9
    r = Trainer(cfg(pol, epochs=3), tmp_path / "r", quiet=True)
    assert r.fit(until_epoch=1) is None
    again = Trainer.resume(tmp_path / "r", quiet=True).fit()
    assert (again["switch_step"], again["test_mse"]) == (m["switch_step"], m["test_mse"])
    c = run_cost(tmp_path / "a", gpu_spec("A100-SXM4-80GB"), technology())
    assert c["held_out_batches"] == 2 * len(checks)
    rows = {(b["phase"], b["unit"]): b for b in c["breakdown"]}
    ev = rows[("full", "gpu policy held-out evaluation")]
    full = rows[("full", "gpu")]
    # one evaluation batch is a forward pass: cheaper than a training step
    assert 0 < ev["seconds"] / c["held_out_batches"] < full["seconds"] / m["switch_step"]


def test_branch_policy_adopts_the_branch_or_drops_it_resumes_and_costs_it(tmp_path):
    """The branch policy copies the full model at its branch point (end of epoch 1 here),
    trains the LoRA copy beside it and, at the verdict, either adopts it (the run's base
    weights are then the full model's at the branch point) or drops it and goes on
    training the full model; a run stopped mid-branch resumes to the same numbers; the
    cost charges the trial's iterations and the copy's held-out evaluation."""
    import torch

    from sw.cost.estimate import gpu_spec, run_cost, technology
    from sw.model.hybrid import base_weight

    def branch(margin):
        # checks every 3 of 36 iterations (9 an epoch): starts at 9 (>= 0.2 x 36), due at
        # 21 (>= 9 + 0.3 x 36); headroom never fires (tolerance 1e-6)
        return PolicyConfig(name="branch", k=3, held_out=20, headroom_tol=1e-6, lora_rank=2,
                            branch_at=0.2, branch_len=0.3, branch_margin=margin)

    runs = {}
    for margin in (0.0, 0.5):
        tr = Trainer(cfg(branch(margin), epochs=4), tmp_path / str(margin), quiet=True)
        runs[margin] = (tr, tr.fit())
        hist = json.loads((tmp_path / str(margin) / "history.json").read_text())["policy"]
        trials = [h for h in hist if "trial" in h]
        assert [(t["step"], t["trial_steps"], t["held_out_batches"]) for t in trials] == \
            [(21, 12, 2)]
        # the held-out losses of both models at the verdict do not depend on the margin
        runs[margin] += (trials[0],)
    adopted, dropped = runs[0.0], runs[0.5]
    assert adopted[2]["full_held_out_loss"] == dropped[2]["full_held_out_loss"]
    assert adopted[2]["lora_held_out_loss"] == dropped[2]["lora_held_out_loss"]
    assert adopted[2]["lora_held_out_loss"] < adopted[2]["full_held_out_loss"]
    assert adopted[2]["switch"] and not dropped[2]["switch"]
    m = adopted[1]
    assert (m["switch_step"], m["ranks"], m["low_param_fraction"]) == (21, [2, 2], 15 / 36)
    assert dropped[1]["switch_step"] is None and dropped[1]["low_param_fraction"] == 0.0
    # the adopted model's frozen base is the full model at the branch point (iteration 9)
    ref = Trainer(cfg(PolicyConfig(name="full", k=3), epochs=4), tmp_path / "ref", quiet=True)
    assert ref.fit(until_epoch=1) is None and ref.step == 9
    for layer in range(2):
        for t in ("q", "v"):
            assert torch.equal(base_weight(adopted[0].model, layer, t),
                               base_weight(ref.model, layer, t))
            assert not torch.equal(base_weight(dropped[0].model, layer, t),
                                   base_weight(ref.model, layer, t))
    # stopped after epoch 2 (iteration 18), while the branch trains: resumes exactly
    r = Trainer(cfg(branch(0.0), epochs=4), tmp_path / "r", quiet=True)
    assert r.fit(until_epoch=2) is None and r.trial is not None
    again = Trainer.resume(tmp_path / "r", quiet=True).fit()
    assert (again["switch_step"], again["test_mse"]) == (m["switch_step"], m["test_mse"])
    for margin, (_, mm, _) in runs.items():
        c = run_cost(tmp_path / str(margin), gpu_spec("A100-SXM4-80GB"), technology())
        checks = 21 // 3 if margin == 0.0 else 36 // 3
        assert c["trial_steps"] == 12 and c["held_out_batches"] == 2 * checks + 2
        rows = {(b["phase"], b["unit"]) for b in c["breakdown"]}
        assert ("full", "gpu LoRA trial") in rows


def test_attention_bias_trains_in_the_full_phase_freezes_at_the_switch_resumes_and_costs(
        tmp_path):
    """``ModelConfig.attn_bias``: the full phase trains the bias, the switch freezes it with
    the rest of the base (the frozen-random control keeps it at zero), a run stopped after
    the switch resumes to the same numbers, and the cost model moves the bias at the
    switch."""
    import torch
    from sw.cost.estimate import gpu_spec, run_cost, technology
    model = ModelConfig(**{**SMALL["model"].to_dict(), "attn_bias": True})

    def c(policy):
        return RunConfig(train=TrainConfig(epochs=3, batch=16, seed=0, lr_step_epochs=2),
                         policy=policy, **{**SMALL, "model": model})

    def bias(run):
        t = Trainer.resume(run, quiet=True)
        return [(p.detach().clone(), p.requires_grad) for n, p in t.model.named_parameters()
                if n.endswith("station_bias")]

    at5 = PolicyConfig(name="switch-at", switch_at=5, lora_rank=2)
    a = Trainer(c(at5), tmp_path / "a", quiet=True).fit()
    t = Trainer(c(at5), tmp_path / "b", quiet=True)
    assert t.fit(until_epoch=1) is None                     # stopped after the switch
    after_switch = bias(tmp_path / "b")
    b = Trainer.resume(tmp_path / "b", quiet=True).fit()
    assert (b["test_mse"], b["switch_step"]) == (a["test_mse"], 5)
    final = bias(tmp_path / "a")
    assert len(final) == 2 and not any(g for _, g in final)
    for (x, _), (y, _) in zip(after_switch, final):
        assert torch.equal(x, y) and x.abs().sum() > 0       # trained, then frozen
    Trainer(c(PolicyConfig(name="lora", lora_rank=2)), tmp_path / "l", quiet=True).fit()
    assert all(not p.any() for p, _ in bias(tmp_path / "l"))
    cost = run_cost(tmp_path / "a", gpu_spec("A100-SXM4-80GB"), technology())
    assert cost["switch_state_bytes"] == 4 * 2 * 2 * 6 * 6  # fp32, layers x heads x S x S
    assert cost["preset"] == "custom+attn-bias"
    # the bias learns at attn_bias_lr x the rate, under both schedules, also after a resume
    for schedule in ("step", "cosine"):
        run = RunConfig(train=TrainConfig(epochs=3, batch=16, seed=0, lr_step_epochs=1,
                                          schedule=schedule, attn_bias_lr=7.0),
                        policy=PolicyConfig(name="full"), **{**SMALL, "model": model})
        assert Trainer(run, tmp_path / schedule, quiet=True).fit(until_epoch=2) is None
        t = Trainer.resume(tmp_path / schedule, quiet=True)
        main, grp = t.opt.param_groups
        assert {id(p) for p in grp["params"]} == {
            id(p) for n, p in t.model.named_parameters() if n.endswith("station_bias")}
        assert main["lr"] < 1e-3 and grp["lr"] == pytest.approx(7.0 * main["lr"], rel=1e-12)
    with pytest.raises(ValueError, match="TrainConfig.attn_bias_lr must be positive"):
        TrainConfig(attn_bias_lr=0.0)
