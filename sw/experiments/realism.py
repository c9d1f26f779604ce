"""Training on realistic ReRAM (``hpt realism``): does HpT's low-parameter phase still
train when the frozen weights sit on measured-device conductances?

Per app and seed, three runs train with the ``switch-at`` control (the switch at a fixed
share ``f`` of the iterations, so every row has the same low phase) on the functional
backend, each with its own tiles in every ReRAM block:

* ``ideal``: exact int8 tiles (:meth:`hw.reram.TileConfig.ideal`);
* ``default``: today's default tile (``uniform`` device, bounded programming error);
* ``fitted, in the loop`` (the noise-aware option): the fitted device model
  (``wan2022`` unless told otherwise) -- the LoRA trains through the programmed
  conductances and fresh read noise, so it learns around the device's errors.

and two rows only evaluate (:meth:`sw.train.trainer.Trainer.deployed`, nothing retrained):

* ``fitted, unaware``: the ``ideal`` run's final model deployed on the fitted device
  (what a LoRA that never saw the device gets);
* ``fitted, in the loop, aged T``: the noise-aware run's model after the cells drifted
  for ``T`` seconds after programming (the device model's retention fits), which shows
  what drift over a long run or deployment does to a LoRA trained at programming time.

The metric is the final model's test MSE (normalised units): the model the low phase
produced, which is what runs on the manycore (best-validation selection could pick a
model from before the switch, which never touches ReRAM). Each row gives mean +- 95 %
Student-t CI over the seeds and the paired difference against ``ideal`` on the same seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["MODES", "run", "summarise", "format_table"]

MODES = ("ideal", "default", "fitted, unaware", "fitted, in the loop")


def _tiles(fitted: str):
    from hw.manycore import preset
    base = preset("atleus").tile
    return {"ideal": base.ideal(), "default": base,
            "fitted, in the loop": base.changed(device=fitted)}


def _jobs(apps, seeds, epochs, fraction, fitted, out):
    from hw.manycore import preset
    from sw.experiments.quality import switch_steps
    hw = preset("atleus")
    jobs = []
    for app in apps:
        for seed in seeds:
            step = switch_steps(app, seed, epochs, [fraction])[0]
            for mode, tile in _tiles(fitted).items():
                tag = {"ideal": "ideal", "default": "default"}.get(mode, fitted)
                jobs.append({"app": app, "policy": "switch-at", "switch_at": step,
                             "backend": "functional", "seed": seed, "epochs": epochs,
                             "out": str(out), "hw": hw.replace(tile=tile).to_dict(),
                             "name": f"{app}_{tag}_s{seed}", "mode": mode})
    return jobs


def _deployed(job: dict) -> dict:
    import torch
    torch.set_num_threads(1)
    from hw.reram import TileConfig
    from sw.train.trainer import Trainer
    tile = TileConfig.from_dict(job["tile"]) if job.get("tile") else None
    tr = Trainer.deployed(Path(job["run"]), tile, job.get("age_s"))
    return {"final_test_mse": tr.evaluate(tr.data.test)["mse"]}


def run(out: Path, apps=("swe", "weather", "wind", "epidemic"), seeds=(0, 1, 2),
        epochs: int = 10, fraction: float = 0.9, fitted: str = "wan2022",
        ages=(86400.0, 172800.0), jobs: int = 2, engine: str = "ray",
        address: str | None = None) -> list[dict]:
    """Train (or reuse) the grid's runs and evaluate the deployments; one row per app,
    seed and mode (see the module docstring)."""
    from hw.reram import DEVICES
    from sw.experiments.engine import Task, execute
    from sw.experiments.quality import run_jobs
    if fitted not in DEVICES or DEVICES[fitted].kind != "gaussian":
        raise ValueError(f"fitted must name a Gaussian device model "
                         f"({[d for d, m in DEVICES.items() if m.kind == 'gaussian']}), "
                         f"not {fitted!r}")
    out = Path(out)
    train_jobs = _jobs(apps, seeds, epochs, fraction, fitted, out)
    # run_jobs checks every configuration first: a bad parameter stops it, nothing written
    metrics = run_jobs([{k: v for k, v in j.items() if k != "mode"} for j in train_jobs], jobs,
                       engine=engine, address=address, quiet=False)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    evals = []
    fitted_tile = _tiles(fitted)["fitted, in the loop"]
    for j, m in zip(train_jobs, metrics):
        base = {"app": j["app"], "seed": j["seed"], "switch_step": m["switch_step"],
                "low_param_fraction": m["low_param_fraction"]}
        rows.append({**base, "mode": j["mode"], "final_test_mse": m["final_test_mse"]})
        run_dir = str(out / j["name"])
        if j["mode"] == "ideal":
            evals.append(({**base, "mode": "fitted, unaware"},
                          {"run": run_dir, "tile": fitted_tile.to_dict()}))
        if j["mode"] == "fitted, in the loop":
            for age in ages:
                evals.append(({**base, "mode": f"fitted, in the loop, aged {age:g} s"},
                              {"run": run_dir, "age_s": age}))
    tasks = [Task(f"{e['run']}@{e.get('age_s', 'unaware')}", _deployed, e) for _, e in evals]
    done = execute(tasks, engine=engine, address=address,
                   cpus=max(jobs, 1) if engine == "ray" and address is None else None,
                   retries=1, what="deployments")
    bad = [o for o in done if not o.ok]
    if bad:
        raise RuntimeError(f"deployment {bad[0].key} failed: {bad[0].error}\n{bad[0].log}")
    for (row, _), o in zip(evals, done):
        rows.append({**row, **o.value})
    (out / "realism.json").write_text(json.dumps(
        {"rows": rows, "fitted": fitted, "epochs": epochs, "fraction": fraction,
         "tiles": {k: v.to_dict() for k, v in _tiles(fitted).items()}}, indent=1) + "\n")
    return rows


def summarise(rows: list[dict]) -> dict:
    """Per app and mode: test MSE mean +- CI and the paired difference against ideal."""
    from sw.train.policy import mean_ci
    by: dict = {}
    for r in rows:
        by.setdefault((r["app"], r["mode"]), {})[r["seed"]] = r["final_test_mse"]
    out: dict = {}
    for (app, mode), per_seed in by.items():
        ideal = by.get((app, "ideal"), {})
        seeds = sorted(s for s in per_seed if s in ideal)
        mse = mean_ci(list(per_seed.values()))
        diff = mean_ci([100 * (per_seed[s] - ideal[s]) / ideal[s] for s in seeds]) \
            if seeds else (float("nan"), float("nan"))
        out.setdefault(app, {})[mode] = {"mse": mse, "vs_ideal_pct": diff,
                                         "seeds": len(per_seed)}
    return out


def format_table(summary: dict) -> str:
    lines = ["| app | tiles | final test MSE (mean ± 95 % CI) | vs ideal, paired (%) | seeds |",
             "|---|---|---|---|---|"]
    for app, modes in summary.items():
        order = sorted(modes, key=lambda m: (MODES.index(m) if m in MODES else len(MODES),
                                             float(m.split("aged ")[1].split()[0])
                                             if "aged " in m else 0.0))
        for mode in order:
            s = modes[mode]
            (m, h), (d, dh) = s["mse"], s["vs_ideal_pct"]
            diff = "—" if mode == "ideal" else f"{d:+.1f} ± {dh:.1f}"
            lines.append(f"| {app} | {mode} | {m:.4g} ± {h:.2g} | {diff} | {s['seeds']} |")
    return "\n".join(lines) + "\n"
