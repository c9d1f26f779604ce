"""The quality table: confidence intervals, paired differences, baselines, switch curve."""

import math

import pytest

from sw.train.policy import t_quantile
from sw.experiments.quality import plot_switch_curve, summarise


def _run(app, policy, seed, mse, switch=None, f=0.0, params=None):
    return {"app": app, "policy": policy, "backend": "torch", "seed": seed, "test_mse": mse,
            "switch_step": switch, "low_param_fraction": f, "trainable_params_low": params}


def test_summary_pairs_seeds_and_reports_intervals(tmp_path):
    full = [1.0, 2.0, 4.0]
    lora = [1.1, 2.2, 4.4]                                   # +10 % on every seed
    runs = [_run("wind", "full", s, m) for s, m in enumerate(full)]
    runs += [_run("wind", "lora", s, m, 0, 1.0, 1234) for s, m in enumerate(lora)]
    runs += [_run("wind", "switch-at", s, m, 60, 0.9, 1234) for s, m in enumerate(full)]
    base = {("wind", s): {"mean": 1.0, "persistence": 3.0, "ridge": r}
            for s, r in enumerate((2.0, 2.0, 2.0))}
    summary, table = summarise(runs, base)
    f = summary["wind/full/torch"]
    assert f["test_mse"]["mean"] == pytest.approx(7 / 3)
    sd = math.sqrt(sum((x - 7 / 3) ** 2 for x in full) / 2)
    assert f["test_mse"]["ci95"] == pytest.approx(t_quantile(0.95, 2) * sd / math.sqrt(3))
    assert f["vs_full_percent"] is None
    lo = summary["wind/lora/torch"]
    # paired: exactly +10 % on each seed, so the interval has no width
    assert lo["vs_full_percent"]["mean"] == pytest.approx(10.0)
    assert lo["vs_full_percent"]["ci95"] == pytest.approx(0.0, abs=1e-9)
    assert lo["vs_ridge_percent"]["mean"] == pytest.approx((1.1 / 2 + 2.2 / 2 + 4.4 / 2 - 3) / 3 * 100)
    assert lo["switch_steps"] == [0, 0, 0]
    assert lo["trainable_params_low"] == {"mean": 1234.0, "min": 1234, "max": 1234}
    assert summary["wind/switch-at 60/torch"]["low_param_fraction"]["mean"] == 0.9
    assert summary["wind/baseline ridge/-"]["test_mse"]["mean"] == 2.0
    assert "| wind | lora | torch | 2.5667 ± " in table and "+10.0 % ± 0.0 %" in table
    assert "| wind | baseline persistence | - | 3.0000 ± 0.0000 (3) |" in table
    assert table.count("| 1,234 |") == 2                  # lora and switch-at, same on all seeds
    # measured ranks differ by seed: the mean and the range
    varied = [_run("wind", "early", s, m, 30, 0.9, p)
              for s, (m, p) in enumerate(zip(full, (100, 200, 600)))]
    row = summarise(runs + varied, base)[0]["wind/early/torch"]
    assert row["trainable_params_low"] == {"mean": 300.0, "min": 100, "max": 600}
    assert "| 300 (100-600) |" in summarise(runs + varied, base)[1]
    tiny = summarise([_run("swe", "full", s, m) for s, m in enumerate((6.6e-6, 7.0e-6))],
                     {("swe", s): {"mean": 6.3, "persistence": 1e-5, "ridge": 8e-4}
                      for s in (0, 1)})[1]
    assert "| swe | full | torch | 6.80e-06 ± 2.54e-06 (2) |" in tiny
    png = plot_switch_curve(summary, tmp_path / "curve.png")
    assert png.is_file() and png.stat().st_size > 1000
    assert plot_switch_curve({k: v for k, v in summary.items() if "switch-at" not in k},
                             tmp_path / "none.png") is None


def test_switch_points_are_shares_of_the_iterations():
    from sw.experiments.quality import switch_steps
    # the default wind data: 1,041 training windows -> 33 batches of 32 per epoch
    assert switch_steps("wind", 0, 20, [0.95, 0.5]) == [33, 330]
    assert switch_steps("wind", 0, 1, [0.999]) == [1]
    # 4x the data: 6,000 steps -> 4,191 training windows -> 131 batches per epoch
    assert switch_steps("wind", 0, 10, [0.9], steps=6000) == [131]


def test_grid_jobs_carry_size_preset_and_recipe():
    from sw.experiments.quality import _job_name, _run_config
    job = {"app": "wind", "seed": 3, "epochs": 2, "backend": "torch", "policy": "full",
           "steps": 600, "preset": "paper", "recipe": {"lr": 1e-4}}
    c = _run_config(job)
    assert (c.data.steps, c.data.seed, c.model.d_model, c.model.layers) == (600, 3, 512, 12)
    # the paper preset's recipe, with the job's override on top
    assert (c.train.schedule, c.train.clip, c.train.lr, c.train.epochs) == ("cosine", 1.0, 1e-4, 2)
    tiny = _run_config({**job, "preset": "tiny", "recipe": {}, "steps": None})
    assert tiny.train.schedule == "step" and tiny.data.steps == 1500
    assert not tiny.model.attn_bias
    assert _run_config({**job, "model": {"attn_bias": True}}).model.attn_bias
    assert _job_name(job) == "wind_full_torch_s3"
    # weather's mean flow reaches the weather app only, so one grid carries it for all apps
    flow = {**job, "data": {"flow_kmh": 40.0}}
    assert _run_config(flow).data.flow_kmh == 0.0
    assert _run_config({**flow, "app": "weather"}).data.flow_kmh == 40.0


def test_a_finished_run_is_reused_only_for_the_same_configuration(tmp_path):
    import json

    from sw.experiments.quality import _job_name, _one, _run_config
    job = {"app": "wind", "policy": "full", "backend": "torch", "seed": 0, "epochs": 1,
           "out": str(tmp_path)}
    run = tmp_path / _job_name(job)
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"test_mse": 0.5}))
    (run / "config.json").write_text(json.dumps(_run_config(job).to_dict()))
    assert _one(job) == {"test_mse": 0.5}
    old = _run_config(job).to_dict()
    del old["model"]["residual"]                     # a run from before the residual head
    (run / "config.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="holds a finished run of another configuration"):
        _one(job)
    # a headroom or branch run from before the confidence bound and the best reference
    # loads as it ran (the point estimate, the last evaluation), so it is not reused; runs
    # of other policies do not read those fields and still are
    from sw.train.trainer import RunConfig
    for policy, reused in (("headroom", False), ("branch", False), ("paper", True)):
        j = {**job, "policy": policy}
        run = tmp_path / _job_name(j)
        run.mkdir()
        (run / "metrics.json").write_text(json.dumps({"test_mse": 0.25}))
        before = _run_config(j).to_dict()
        for field in ("headroom_confidence", "branch_reference"):
            del before["policy"][field]
        (run / "config.json").write_text(json.dumps(before))
        loaded = RunConfig.from_dict(before).policy
        assert (loaded.headroom_confidence, loaded.branch_reference) == (
            (0.9, "best") if reused else (0.5, "last"))
        if reused:
            assert _one(j) == {"test_mse": 0.25}
        else:
            with pytest.raises(ValueError, match="another configuration"):
                _one(j)


def test_rank_modes_add_rows_for_the_measuring_policies(tmp_path, monkeypatch):
    """``--ranks layer module fixed``: intrinsic-dim and early run once per mode (their own
    run folders and table rows); the other policies once."""
    from sw.experiments import quality
    seen = []
    monkeypatch.setattr(quality, "run_jobs", lambda jobs, *a, **k: seen.extend(jobs) or [])
    quality.run_grid(tmp_path, apps=("wind",), policies=("full", "paper", "intrinsic-dim"),
                     seeds=(0, 1), rank_modes=("layer", "module", "fixed"))
    names = sorted(quality._job_name(j) for j in seen)
    assert names == sorted(f"wind_{p}_torch_s{s}" for p in (
        "full", "paper", "intrinsic-dim", "intrinsic-dim-module-ranks",
        "intrinsic-dim-fixed-ranks") for s in (0, 1))
    cfgs = {quality._job_name(j): quality._run_config(j).policy.ranks for j in seen}
    assert cfgs["wind_intrinsic-dim-module-ranks_torch_s0"] == "module"
    row = {"app": "wind", "policy": "intrinsic-dim", "rank_mode": "module", "backend": "torch"}
    assert quality._key(row) == ("wind", "intrinsic-dim (module ranks)", "torch")


def test_the_default_protocol():
    """``hpt quality`` with no flags is the protocol of the README's table: 6,000 steps per
    app, 10 epochs, 5 seeds, the cosine schedule over both phases, the attention bias, and
    weather's anomalies moving at 40 km/h."""
    from hpt.cli import _model_overrides, _recipe, build_parser
    a = build_parser().parse_args(["quality"])
    assert (a.steps, a.epochs, a.seeds, a.preset, a.horizon) == (6000, 10, [0, 1, 2, 3, 4],
                                                                 "tiny", 1)
    assert _recipe(a) == {"schedule": "cosine"}
    # the attention bias, and weather's anomalies carried by a 40 km/h flow
    assert (_model_overrides(a), a.flow_kmh) == ({"attn_bias": True}, 40.0)
    b = build_parser().parse_args(["quality", "--no-attn-bias", "--flow-kmh", "0"])
    assert (_model_overrides(b), b.flow_kmh) == ({}, 0.0)
    t = build_parser().parse_args(["train", "--app", "weather", "--out", "x"])
    assert (_model_overrides(t), t.flow_kmh) == ({}, 0.0)        # hpt train: neither
    old = build_parser().parse_args(["quality", "--steps", "1500", "--epochs", "20",
                                     "--schedule", "step"])
    assert _recipe(old) == {"schedule": "step"}


def test_cli_quality_runs_the_protocol_and_names_it(tmp_path):
    """``hpt quality``'s runs carry the protocol's bias and weather flow; summary.md says so."""
    import json

    from hpt.cli import main
    out = tmp_path / "q"
    assert main(["quality", "--apps", "weather", "wind", "--policies", "full", "--seeds", "0",
                 "--epochs", "1", "--steps", "160", "--engine", "serial", "--out",
                 str(out)]) == 0
    text = (out / "summary.md").read_text()
    assert text.startswith("Protocol: preset tiny, 160 steps, 1 epochs")
    assert "model {'attn_bias': True}, weather flow 40 km/h" in text
    cfg = lambda app: json.loads((out / f"{app}_full_torch_s0" / "config.json").read_text())  # noqa: E731
    assert (cfg("weather")["data"]["flow_kmh"], cfg("weather")["model"]["attn_bias"]) == (40.0, True)
    assert (cfg("wind")["data"]["flow_kmh"], cfg("wind")["model"]["attn_bias"]) == (0.0, True)
    assert set(json.loads((out / "summary.json").read_text())) >= {
        "weather/full/torch", "weather/baseline ridge/-", "wind/full/torch"}


BAD_GRID = [
    ("flow", ["--flow-kmh", "-1"], "DataConfig.flow_kmh must be a finite number >= 0"),
    ("flow", ["--flow-kmh", "nan"], "DataConfig.flow_kmh must be a finite number >= 0"),
    ("flow", ["--flow-kmh", "inf"], "DataConfig.flow_kmh must be a finite number >= 0"),
    ("epochs", ["--epochs", "0"], "TrainConfig.epochs must be positive"),
    ("seed", ["--seeds", "0", "-1"], "DataConfig.seed must be an integer in [0, 2**32)"),
]
#: the commands' own spelling of a grid flag (hpt compare has one seed; realism no flow)
SPELLING = {("compare", "--seeds"): ["--seed", "-1"]}


@pytest.mark.parametrize("command, bad, message", [
    (c, SPELLING.get((c, bad[0]), bad), m) for c in ("quality", "compare", "realism")
    for kind, bad, m in BAD_GRID if not (c == "realism" and kind == "flow")])
def test_cli_bad_grid_parameter_stops_before_anything_runs(tmp_path, capsys, command, bad,
                                                           message):
    """A bad parameter of a grid command is one error naming it, exit 2, no folder
    written: every job's configuration (and each data set) is checked before any trains."""
    from hpt.cli import main
    out = tmp_path / "q"
    rest = ["--policies", "full"] if command != "realism" else []
    assert main([command, "--apps", "weather", *rest, "--engine", "serial", *bad,
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("bad, message", [
    (["--steps", "0"], "DataConfig.steps must be a positive integer, not 0"),
    (["--horizon", "0"], "DataConfig.horizon must be a positive integer, not 0"),
    (["--steps", "13"], "wind: 1 usable time steps are too few to split"),
    (["--lr", "-1"], "TrainConfig.lr must be positive, not -1.0")])
def test_cli_quality_bad_size_or_recipe_stops_before_anything_runs(tmp_path, capsys, bad,
                                                                   message):
    from hpt.cli import main
    out = tmp_path / "q"
    assert main(["quality", "--apps", "wind", "--policies", "full", "--engine", "serial", *bad,
                 "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
