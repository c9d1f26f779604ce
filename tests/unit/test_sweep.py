"""`hpt sweep` and the execution engine: spec checking, re-tiling cost points, the Ray
engine against the serial one, reuse, retries of failed and killed points."""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from sw.experiments.engine import Task, execute
from sw.experiments.sweep import SpecError, load_spec, pareto_front, resolve, run_sweep

ray = pytest.importorskip("ray")
# the Ray workers cannot import this test module: its helper functions travel by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

#: a small, fast training run (every point of the train sweeps below)
SMALL = {"data.steps": 200, "data.stations": 6, "data.window": 4, "epochs": 2,
         "train.batch": 16, "model.d_model": 16, "model.ffn": 16, "model.reduce": 8}


@pytest.fixture(scope="module")
def local_ray():
    """One embedded Ray with 2 CPUs for the module (the engine keeps a running one)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield
    ray.shutdown()


def _run_config(hw, switch_at=6):
    from sw.data import DataConfig
    from sw.model.transformer import ModelConfig
    from sw.train.policy import PolicyConfig
    from sw.train.trainer import RunConfig, TrainConfig
    return RunConfig(model=ModelConfig.preset("tiny"),
                     data=DataConfig(app="wind", steps=200, stations=6, window=4),
                     train=TrainConfig(epochs=2, batch=16, device="cpu"),
                     policy=PolicyConfig(name="switch-at", switch_at=switch_at), hw=hw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The same small run trained on two manycores (torch backend: same numbers)."""
    from hw.manycore import preset
    from sw.train.trainer import Trainer
    root = tmp_path_factory.mktemp("trained")
    a = preset("atleus", **{"tile.rows": 64, "systolic.rows": 16, "systolic.cols": 16,
                            "systolic_cores": 4, "replication": 2})
    b = preset("atleus")
    dirs = {}
    for name, hw in (("a", a), ("b", b)):
        Trainer(_run_config(hw), root / name, quiet=True).fit()
        dirs[name] = root / name
    return dirs, a, b


# ---- spec ----------------------------------------------------------------------------------
def test_bad_specs_fail_before_anything_runs(trained, tmp_path):
    dirs, *_ = trained
    run = str(dirs["a"])
    cases = [
        (dict(axes=["tile.adc_bit=6,8"], runs=[run]), "axis tile.adc_bit = 6"),
        (dict(axes=["tile.adc_bits=6,0"], runs=[run]), "axis tile.adc_bits = 0"),
        (dict(axes=["systolic.rows=8,x"], runs=[run]), "axis systolic.rows = 'x'"),
        (dict(axes=["tech.adc_rate=1e9"], runs=[run]), "axis tech.adc_rate = 1000000000.0"),
        (dict(axes=["seed=0,1"], runs=[run]), "axis seed = 0: run settings need a train"),
        (dict(axes=["gpu=H100"], runs=[run]), "axis gpu = 'H100': unknown GPU"),
        (dict(axes=["app=wind,snow"]), "axis app = 'snow'"),
        (dict(axes=["policy=full,fast"]), "axis policy = 'fast'"),
        (dict(axes=["data.stepz=10"]), "axis data.stepz = 10: data has no field 'stepz'"),
        (dict(axes=["backend=rtl"]), "axis backend = 'rtl'"),
        (dict(axes=["seed=0"], fixed=["epochs=0"]), "fixed setting epochs = 0"),
        (dict(axes=["tile.adc_bits=8,8"], runs=[run]), "same configuration"),
        (dict(axes=["tile.adc_bits=8"], runs=[str(tmp_path / "nope")]), "no config.json"),
    ]
    for kw, want in cases:
        with pytest.raises(SpecError) as err:
            spec = load_spec(**kw)
            run_sweep(spec, tmp_path / "out", engine="serial", quiet=True)
        assert want in str(err.value), (kw, str(err.value))
        assert not (tmp_path / "out").exists(), kw          # nothing written
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "cost"\nrunz = []\n')
    with pytest.raises(SpecError, match="unknown key 'runz'"):
        load_spec(bad)
    bad.write_text('kind = "cost"\n[axes\n')
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)
    from hpt.cli import main
    assert main(["sweep", "--cost", run, "--axis", "tile.adc_bits=6,0", "--engine", "serial",
                 "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_points_are_named_by_their_configuration(trained, tmp_path):
    dirs, *_ = trained
    spec = load_spec(axes=["tile.adc_bits=6,8", "systolic_cores=1,4"], runs=[str(dirs["a"])])
    pts = resolve(spec)
    assert len(pts) == spec.points == 4
    again = resolve(load_spec(axes=["systolic_cores=1,4", "tile.adc_bits=6,8"],
                              runs=[str(dirs["a"])]))
    assert {p["key"] for p in pts} == {p["key"] for p in again}   # the order of axes: no matter
    p = pts[0]["resolved"]
    assert p["hw"]["tile"]["adc_bits"] == 6 and p["hw"]["systolic_cores"] == 1
    assert p["hw"]["tile"]["rows"] == 64                           # the run's own manycore
    toml = tmp_path / "s.toml"
    toml.write_text(f'name = "t"\nruns = ["{dirs["a"]}"]\n[fixed]\ngpu = "A100-SXM4-80GB"\n'
                    '[axes]\n"tile.adc_bits" = [6, 8]\n"systolic_cores" = [1, 4]\n')
    spec2 = load_spec(toml)
    assert spec2.kind == "cost" and spec2.name == "t"
    assert [q["key"] for q in resolve(spec2)] == [q["key"] for q in pts]


def test_train_points_set_model_and_recipe_fields_by_dotted_name():
    from sw.experiments.sweep import _run_config as sweep_run_config
    c = sweep_run_config({"model.attn_bias": True, "train.attn_bias_lr": 5.0}, None)
    assert (c.model.attn_bias, c.train.attn_bias_lr, c.model.d_model) == (True, 5.0, 64)
    assert not sweep_run_config({}, None).model.attn_bias
    with pytest.raises(ValueError, match="model has no field 'bias'"):
        sweep_run_config({"model.bias": True}, None)


def test_pareto_front():
    pts = [(2, 2, 1.0), (3, 1, 1.0), (1, 1, 0.5), (1, 1, 2.0), (2, 2, 1.0), (2, 1, 1.0)]
    assert pareto_front(pts) == [True, True, True, False, True, False]


# ---- cost points ---------------------------------------------------------------------------
def test_cost_points_retile_like_a_run_trained_there(trained):
    """A's trace re-costed on B's manycore equals B's own run (the torch backend trains
    the same numbers on both), and differs from A's cost on A."""
    from sw.cost.estimate import gpu_spec, run_cost, technology
    dirs, a, b = trained
    spec, tech = gpu_spec("A100-SXM4-80GB"), technology()
    ma = json.loads((dirs["a"] / "metrics.json").read_text())
    mb = json.loads((dirs["b"] / "metrics.json").read_text())
    assert ma["test_mse"] == mb["test_mse"]
    on_b = run_cost(dirs["a"], spec, tech, hw=b)
    own_b = run_cost(dirs["b"], spec, tech)
    own_a = run_cost(dirs["a"], spec, tech)
    for k in ("speedup", "energy_reduction", "overlap_s"):
        assert on_b[k] == pytest.approx(own_b[k], rel=1e-12), k
    assert on_b["placement"] == own_b["placement"]
    for x, y in zip(on_b["breakdown"], own_b["breakdown"]):
        assert (x["phase"], x["unit"]) == (y["phase"], y["unit"])
        assert x["seconds"] == pytest.approx(y["seconds"], rel=1e-12, abs=1e-18), x
        assert x["joules"] == pytest.approx(y["joules"], rel=1e-12, abs=1e-18), x
    assert own_a["speedup"] != pytest.approx(own_b["speedup"], rel=1e-3)
    # an older trace (no product shapes) cannot move to another array: one clear error
    old = dirs["a"].parent / "old"
    old.mkdir()
    for f in ("config.json", "metrics.json", "history.json"):
        (old / f).write_bytes((dirs["a"] / f).read_bytes())
    trace = json.loads((dirs["a"] / "trace.json").read_text())
    for r in trace:
        r.pop("products", None)
    (old / "trace.json").write_text(json.dumps(trace))
    with pytest.raises(ValueError, match="predates product shapes"):
        run_cost(old, spec, tech, hw=b)
    assert run_cost(old, spec, tech)["speedup"] == pytest.approx(own_a["speedup"])


def test_cost_sweep_command_line(trained, tmp_path, capsys):
    """The issue's command: 6 points, CSV rows, a Pareto plot; a point that cannot hold
    the model is infeasible; a re-run does no work."""
    from hpt.cli import main
    dirs, *_ = trained
    out = tmp_path / "sw"
    argv = ["sweep", "--cost", str(dirs["a"]), "--axis", "tile.adc_bits=6,8,9",
            "--axis", "systolic.rows=8,16", "--out", str(out), "--engine", "serial", "--quiet"]
    assert main(argv) == 0
    import csv
    rows = list(csv.DictReader(open(out / "points.csv")))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"ok"}
    assert {r["tile.adc_bits"] for r in rows} == {"6", "8", "9"}
    assert (out / "pareto.png").stat().st_size > 0 and (out / "sensitivity.png").is_file()
    assert "on the front" in (out / "summary.md").read_text()
    assert any(r["on_front"] == "True" for r in rows)
    # the proxy is the fidelity model's MVM error: a lossless 9-bit ADC adds none
    err = {r["tile.adc_bits"]: float(r["proxy_mvm_error_pct"]) for r in rows}
    assert err["9"] < err["8"] < err["6"]
    capsys.readouterr()
    assert main(argv) == 0
    assert "ran 0 " in capsys.readouterr().out
    # a manycore too small for the model: infeasible, reported, not retried
    out2 = tmp_path / "sw2"
    assert main(["sweep", "--cost", str(dirs["a"]), "--axis", "reram_cores=1,64",
                 "--fixed", "tiles_per_core=1", "--fixed", "crossbars_per_tile=4", "--out", str(out2), "--engine", "serial",
                 "--quiet"]) == 0
    st = {r["reram_cores"]: r for r in csv.DictReader(open(out2 / "points.csv"))}
    assert st["1"]["status"] == "infeasible" and "does not fit" in st["1"]["error"]
    assert st["64"]["status"] == "ok"


# ---- engines -------------------------------------------------------------------------------
def _square(x):
    return x * x


def _die_once(marker):
    """Kill this worker the first time (a lost worker), succeed the second."""
    m = Path(marker)
    if not m.exists():
        m.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def _always_fails(x):
    raise RuntimeError(f"bad point {x}")


def test_engine_retries_killed_and_failed_tasks(local_ray, tmp_path):
    tasks = [Task("sq", _square, 7), Task("die", _die_once, str(tmp_path / "m")),
             Task("bad", _always_fails, 3)]
    out = execute(tasks, engine="ray", retries=2, quiet=True)
    assert [o.key for o in out] == ["sq", "die", "bad"]
    assert out[0].ok and out[0].value == 49 and out[0].attempts == 1
    assert out[1].ok and out[1].attempts == 2                 # the worker died once
    assert not out[2].ok and out[2].attempts == 3
    assert "RuntimeError: bad point 3" in out[2].error and "Traceback" in out[2].log
    seen = []
    ser = execute([Task("bad", _always_fails, 3), Task("sq", _square, 5)], engine="serial",
                  retries=1, quiet=True, on_done=lambda o: seen.append((o.key, o.ok)))
    assert not ser[0].ok and ser[0].attempts == 2 and ser[1].value == 25
    assert seen == [("bad", False), ("sq", True)]        # each recorded as it finished
    with pytest.raises(ValueError, match="engine must be"):
        execute(tasks, engine="dask")


def test_ray_equals_serial_and_rerun_does_nothing(local_ray, tmp_path):
    spec = load_spec(axes=["seed=0,1"], fixed=[f"{k}={v}" for k, v in SMALL.items()]
                     + ["switch_at=6"], name="t")
    s_ray = run_sweep(spec, tmp_path / "ray", engine="ray", quiet=True)
    s_ser = run_sweep(spec, tmp_path / "serial", engine="serial", quiet=True)
    assert s_ray["ran"] == s_ser["ran"] == 2 and not s_ray["failed"]
    for a, b in zip(s_ray["points"], s_ser["points"]):
        assert a["key"] == b["key"] and a["metrics"] == b["metrics"]      # bit for bit
        ma = json.loads((Path(a["run_dir"]) / "metrics.json").read_text())
        mb = json.loads((Path(b["run_dir"]) / "metrics.json").read_text())
        ma.pop("time_per_phase_s"), mb.pop("time_per_phase_s")
        assert ma == mb
    assert s_ray["points"][0]["metrics"]["switch_step"] == 6
    again = run_sweep(spec, tmp_path / "ray", engine="ray", quiet=True)
    assert again["ran"] == 0 and again["reused"] == 2
    assert [p["metrics"] for p in again["points"]] == [p["metrics"] for p in s_ray["points"]]
    rows = (tmp_path / "ray" / "points.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("key,status,seed,")


def _worker_pids(label: str) -> list[int]:
    """Ray names a worker process after the task it runs (``ray::<name>``)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if cmd.startswith("ray::") and label in cmd:
                pids.append(int(d.name))
    return pids


def test_a_killed_training_point_is_retried_and_resumes_exactly(local_ray, tmp_path):
    """Kill the worker of a training point once its first checkpoint is written: the
    sweep retries the point, which resumes from the checkpoint and finishes with the
    numbers of an uninterrupted run."""
    fixed = [f"{k}={v}" for k, v in {**SMALL, "data.steps": 600, "epochs": 6}.items()] \
        + ["switch_at=40"]
    spec = load_spec(axes=["seed=3"], fixed=fixed, name="k")
    key = resolve(spec)[0]["key"]
    killed = []

    def killer():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            ck = list((tmp_path / "k" / "runs").glob(f"*_{key}/checkpoint.pt"))
            if ck and not (ck[0].parent / "metrics.json").exists():
                for pid in _worker_pids(key):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    th = threading.Thread(target=killer)
    th.start()
    s = run_sweep(spec, tmp_path / "k", engine="ray", quiet=True)
    th.join()
    assert killed, "the test did not catch the worker mid-run"
    (row,) = s["points"]
    assert row["status"] == "ok" and row["attempts"] == 2
    ref = run_sweep(spec, tmp_path / "ref", engine="serial", quiet=True)["points"][0]
    assert row["metrics"] == ref["metrics"]


def test_a_train_point_that_does_not_fit_is_infeasible(tmp_path):
    """The small chip holds 7 blocks; the tiny model's frozen linears need 12: the HpT
    point is infeasible (reported, not retried), full training still runs."""
    spec = load_spec(axes=["policy=full,switch-at"],
                     fixed=[f"{k}={v}" for k, v in SMALL.items()]
                     + ["manycore=small", "switch_at=6"], name="fit")
    s = run_sweep(spec, tmp_path, engine="serial", quiet=True)
    full, hpt = s["points"]
    assert full["status"] == "ok" and full["metrics"]["switch_step"] is None
    assert hpt["status"] == "infeasible" and hpt["attempts"] == 1
    assert "does not fit" in hpt["error"] and not s["failed"]


def test_points_that_need_cuda_request_a_gpu_and_progress_shows_eta(tmp_path):
    import io

    from sw.experiments.engine import Progress
    from sw.experiments.sweep import _tasks
    spec = load_spec(axes=["train.device=cpu,cuda"], fixed=["switch_at=6"], name="g")
    tasks, _ = _tasks(spec, resolve(spec), tmp_path, cpus=2)
    assert [(t.cpus, t.gpus) for t in tasks] == [(1.0, 0.0), (1.0, 1.0)]
    out = io.StringIO()
    bar = Progress(4, stream=out)
    bar.update(1, force=True)
    bar.update(2, failed=1, force=True)
    text = out.getvalue()
    assert "1/4 points" in text and "3/4 points, 1 failed" in text and "ETA" in text
