"""Quality benchmark (``hpt quality``): apps x policies x backends x seeds, one preset.

Each run is an ordinary ``hpt train`` run folder under the output directory (a folder that
holds finished metrics is reused). The summary gives, per app, policy and backend:

* the test MSE (best-validation checkpoint, normalised units) as mean +- the half-width of
  its 95 % Student-t confidence interval over the seeds;
* the paired difference against ``full`` on the same seeds (per seed ``(policy - full) /
  full``, then mean +- CI), and against the ridge baseline the same way;
* where the switch fired (per seed), the share of iterations after it (f) and the
  parameters the low-parameter phase trains;

and per app and seed the baselines of :mod:`sw.experiments.baselines` (mean, persistence, ridge) on
the same data. ``switch_fractions`` adds the ``switch-at`` control at forced switch
points (given as f, the share of iterations after the switch); :func:`plot_switch_curve`
draws test MSE against f per app, with full training's band.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

__all__ = ["run_grid", "run_jobs", "check_jobs", "summarise", "step_time_benchmark",
           "switch_steps", "grid_baselines", "plot_switch_curve", "format_table"]

APPS = ("swe", "weather", "wind", "epidemic")
POLICIES = ("full", "paper", "intrinsic-dim", "lora")


def _run_config(job):
    from hw.manycore import ManycoreConfig
    from sw.data import DataConfig
    from sw.model.transformer import ModelConfig
    from sw.train.policy import PolicyConfig
    from sw.train.trainer import RunConfig, TrainConfig
    extra = {"hw": ManycoreConfig.from_dict(job["hw"])} if job.get("hw") else {}
    seed, preset = job["seed"], job.get("preset", "tiny")
    size = {"steps": job["steps"]} if job.get("steps") is not None else {}
    return RunConfig(model=ModelConfig.preset(preset, **(job.get("model") or {})),
                     data=DataConfig(app=job["app"], seed=seed, horizon=job.get("horizon", 1),
                                     **size, **_data_fields(job)),
                     train=TrainConfig.recipe(preset, **{
                         **(job.get("recipe") or {}), "epochs": job["epochs"], "seed": seed,
                         "backend": job["backend"], "mapping": job.get("mapping", "hpt")}),
                     policy=PolicyConfig(name=job["policy"], switch_at=job.get("switch_at"),
                                         ranks=job.get("ranks", "layer")),
                     **extra)


def _data_fields(job) -> dict:
    """The job's DataConfig fields for its app: ``data`` holds fields over the defaults, and
    ``flow_kmh`` (weather's mean flow) reaches the weather app only, so one grid can carry it."""
    fields = dict(job.get("data") or {})
    if job["app"] != "weather":
        fields.pop("flow_kmh", None)
    return fields


def _job_name(job) -> str:
    policy = job["policy"] if job.get("switch_at") is None else f"switch-at-{job['switch_at']}"
    if job.get("ranks", "layer") != "layer":
        policy += f"-{job['ranks']}-ranks"
    h = job.get("horizon", 1)
    return job.get("name") or (f"{job['app']}{'' if h == 1 else f'_h{h}'}_{policy}_"
                               f"{job['backend']}_s{job['seed']}")


def _as_job(job) -> dict:
    """A job as a dict: tuples are (app, policy, backend, seed, epochs, out, horizon)."""
    if isinstance(job, dict):
        return job
    return dict(zip(("app", "policy", "backend", "seed", "epochs", "out", "horizon"), job))


def _one(job) -> dict:
    """Train one run (or read its finished metrics). ``job``: (app, policy, backend, seed,
    epochs, out) or a dict with those and optional ``preset``, ``model`` (ModelConfig fields
    over the preset), ``data`` (DataConfig fields, :func:`_data_fields`), ``mapping``,
    ``hw`` (a ManycoreConfig dict), ``switch_at``, ``steps`` (the app's size), ``recipe``
    (:class:`sw.train.trainer.TrainConfig` fields over the preset's recipe) and ``name``
    (the run folder's name)."""
    import torch
    torch.set_num_threads(1)
    from sw.train.trainer import Trainer

    job = _as_job(job)
    run_dir = Path(job["out"]) / _job_name(job)
    cfg = _run_config(job)
    if (run_dir / "metrics.json").is_file():
        from sw.train.trainer import RunConfig
        saved = run_dir / "config.json"
        # compared as configurations: fields added since the run take their defaults
        if not saved.is_file() or json.dumps(
                RunConfig.from_dict(json.loads(saved.read_text())).to_dict(),
                sort_keys=True) != json.dumps(cfg.to_dict(), sort_keys=True):
            raise ValueError(f"{run_dir} holds a finished run of another configuration "
                             f"(an older model or recipe): remove it, or give another --out")
        return json.loads((run_dir / "metrics.json").read_text())
    return Trainer(cfg, run_dir, quiet=True).fit()


def switch_steps(app: str, seed: int, epochs: int, fractions, horizon: int = 1,
                 steps: int | None = None) -> list[int]:
    """Forced switch steps giving each share ``f`` of the iterations after the switch."""
    from sw.data import load
    cfg = _run_config({"app": app, "seed": seed, "epochs": epochs, "backend": "torch",
                       "policy": "full", "horizon": horizon, "steps": steps})
    per_epoch = math.ceil(len(load(cfg.data).train.X) / cfg.train.batch)
    total = per_epoch * epochs
    return sorted({max(1, min(total - 1, round((1 - f) * total))) for f in fractions})


def run_grid(out: Path, apps=APPS, policies=POLICIES, backends=("torch",), seeds=(0, 1, 2),
             epochs: int = 20, jobs: int = 2, switch_fractions=(), horizon: int = 1,
             engine: str = "ray", address: str | None = None, quiet: bool = True,
             rank_modes=("layer",), steps: int | None = None,
             recipe: dict | None = None, preset: str = "tiny",
             model: dict | None = None, data: dict | None = None) -> list[dict]:
    """The grid's runs (trained, or read back when finished). The measuring policies
    (:data:`sw.train.policy.MEASURING`) run once per mode of ``rank_modes``
    (:data:`sw.train.policy.RANK_MODES`). ``steps``: the apps' size (time steps; None:
    :class:`sw.data.DataConfig`'s); ``preset``: the model preset, trained with its recipe
    (:data:`sw.train.trainer.RECIPES`); ``recipe``: TrainConfig fields over that recipe;
    ``model``: ModelConfig fields over the preset (e.g. ``{"attn_bias": True}``); ``data``:
    DataConfig fields (``flow_kmh`` reaches the weather app only)."""
    from sw.train.policy import MEASURING as measuring
    common = {"epochs": epochs, "out": str(out), "horizon": horizon, "steps": steps,
              "recipe": dict(recipe or {}), "preset": preset, "model": dict(model or {}),
              "data": dict(data or {})}
    jobs_list = [{"app": a, "policy": p, "backend": b, "seed": s, "ranks": r, **common}
                 for a in apps for b in backends for p in policies
                 for r in (rank_modes if p in measuring else ("layer",)) for s in seeds
                 if not (p == "full" and b != backends[0])]
    for a in apps:
        forced = switch_steps(a, seeds[0], epochs, switch_fractions, horizon, steps) \
            if switch_fractions else ()
        for step in forced:
            jobs_list += [{"app": a, "policy": "switch-at", "switch_at": step, "backend": "torch",
                           "seed": s, **common} for s in seeds]
    return run_jobs(jobs_list, jobs, engine=engine, address=address, quiet=quiet)


def check_jobs(jobs_list) -> None:
    """Build every job's configuration, and load each distinct data set once (one seed
    stands for all), so that a bad parameter stops a grid with one error naming it before
    anything trains or is written."""
    from sw.data import load
    seen = set()
    for job in map(_as_job, jobs_list):
        data = _run_config(job).data
        key = json.dumps({**data.to_dict(), "seed": None}, sort_keys=True)
        if key not in seen:
            seen.add(key)
            load(data)


def run_jobs(jobs_list, jobs: int = 2, engine: str = "ray", address: str | None = None,
             retries: int = 1, quiet: bool = True) -> list[dict]:
    """Train the runs of ``jobs_list`` (see :func:`_one`) as tasks of :mod:`sw.experiments.engine`
    (Ray: ``jobs`` CPUs of an embedded Ray, or the cluster at ``address``; serial: here,
    one after another). Each run sets torch to one thread (restored by the serial
    engine). A run that still fails after ``retries`` re-runs stops the grid, after the
    others finished, with every failure's error."""
    from sw.experiments.engine import Task, execute
    norm = [_as_job(j) for j in jobs_list]
    check_jobs(norm)
    tasks = [Task(str(Path(j["out"]) / _job_name(j)), _one, j, label=_job_name(j))
             for j in norm]
    out = execute(tasks, engine=engine, address=address,
                  cpus=max(jobs, 1) if engine == "ray" and address is None else None,
                  retries=retries, quiet=quiet, what="runs")
    bad = [o for o in out if not o.ok]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(out)} runs failed after {retries + 1} "
                           "attempts: " + "; ".join(f"{o.key}: {o.error}" for o in bad[:5])
                           + "\n" + bad[0].log)
    return [o.value for o in out]


def grid_baselines(apps, seeds, horizon: int = 1, steps: int | None = None,
                   data: dict | None = None) -> dict:
    """``(app, seed) -> baselines`` on the data each run of that app and seed trains on."""
    from sw.experiments.baselines import baselines
    from sw.data import load
    return {(a, s): baselines(load(_run_config({"app": a, "seed": s, "epochs": 1,
                                                "backend": "torch", "policy": "full",
                                                "horizon": horizon, "steps": steps,
                                                "data": data}).data))
            for a in apps for s in seeds}


def _ci(values) -> dict:
    from sw.train.policy import mean_ci
    m, h = mean_ci(values)
    return {"mean": m, "ci95": h, "n": len(values)}


def _pm(c: dict, fmt: str | None = None, unit: str = "") -> str:
    """``mean ± ci``; an MSE (no ``fmt``) with 4 decimals, or 3 significant digits in
    scientific notation below 0.001 (swe's errors at 6,000 steps are ~1e-5)."""
    if fmt is None:
        fmt = ".4f" if abs(c["mean"]) >= 1e-3 or c["mean"] == 0 else ".2e"
    if math.isnan(c["ci95"]):
        return f"{c['mean']:{fmt}}{unit}"
    return f"{c['mean']:{fmt}}{unit} ± {c['ci95']:{fmt.lstrip('+')}}{unit}"


def _key(r) -> tuple:
    policy = r["policy"]
    if policy == "switch-at":
        policy = f"switch-at {r['switch_step']}"
    if r.get("rank_mode", "layer") != "layer":
        policy += f" ({r['rank_mode']} ranks)"
    return r["app"], policy, "torch" if r["policy"] == "full" else r["backend"]


def summarise(results: list[dict], baselines: dict | None = None) -> tuple[dict, str]:
    """The summary (JSON-ready) and its markdown table; see the module docstring."""
    table: dict = {}
    for r in results:
        table.setdefault(_key(r), []).append(r)
    summary: dict = {}
    for (app, policy, backend), runs in sorted(table.items()):
        runs = sorted(runs, key=lambda r: r["seed"])
        mse = [r["test_mse"] for r in runs]
        full = {r["seed"]: r["test_mse"] for r in table.get((app, "full", "torch"), [])}
        paired = [(r["test_mse"] - full[r["seed"]]) / full[r["seed"]] * 100
                  for r in runs if r["seed"] in full]
        row = {"app": app, "policy": policy, "backend": backend, "seeds": [r["seed"] for r in runs],
               "test_mse": _ci(mse), "test_mse_seeds": mse,
               "vs_full_percent": _ci(paired) if paired and policy != "full" else None,
               "switch_steps": [r["switch_step"] for r in runs],
               "low_param_fraction": _ci([r["low_param_fraction"] for r in runs]),
               "trainable_params_low": _params([r.get("trainable_params_low") for r in runs]),
               "ranks_seeds": [r.get("ranks") for r in runs]}
        if baselines:
            ridge = [(r["test_mse"] - baselines[(app, r["seed"])]["ridge"])
                     / baselines[(app, r["seed"])]["ridge"] * 100
                     for r in runs if (app, r["seed"]) in baselines]
            row["vs_ridge_percent"] = _ci(ridge) if ridge else None
        summary[f"{app}/{policy}/{backend}"] = row
    if baselines:
        for app in sorted({a for a, _ in baselines}):
            seeds = sorted(s for a, s in baselines if a == app)
            for name in ("mean", "persistence", "ridge"):
                vals = [baselines[(app, s)][name] for s in seeds]
                summary[f"{app}/baseline {name}/-"] = {
                    "app": app, "policy": f"baseline {name}", "backend": "-", "seeds": seeds,
                    "test_mse": _ci(vals), "test_mse_seeds": vals}
    return summary, format_table(summary)


def _params(counts) -> dict | None:
    """Parameters trained after the switch over the seeds (measured ranks vary by seed):
    mean, min and max; None when no run switched."""
    counts = [c for c in counts if c is not None]
    if not counts:
        return None
    return {"mean": float(np.mean(counts)), "min": min(counts), "max": max(counts)}


def _fmt_params(p) -> str:
    if p is None:
        return "all"
    if isinstance(p, (int, float)):                 # summaries written before the ranges
        return f"{int(p):,}"
    mean = f"{round(p['mean']):,}"
    return mean if p["min"] == p["max"] else f"{mean} ({p['min']:,}-{p['max']:,})"


def format_table(summary: dict) -> str:
    lines = ["| app | policy | backend | test MSE (mean ± 95 % CI) | vs full, paired | "
             "vs ridge, paired | f (share after switch) | switch step per seed | "
             "trainable params after switch |",
             "|---|---|---|---|---|---|---|---|---|"]
    def order(kv):
        name, _, step = kv[1]["policy"].partition("switch-at ")
        return (kv[1]["app"], kv[1]["policy"].startswith("baseline"), kv[1]["policy"] != "full",
                name, int(step) if step else 0)
    for _, r in sorted(summary.items(), key=order):
        n = r["test_mse"]["n"]
        if r["policy"].startswith("baseline"):
            lines.append(f"| {r['app']} | {r['policy']} | - | {_pm(r['test_mse'])} ({n}) | "
                         f"| | | | |")
            continue
        vs = r.get("vs_full_percent")
        vr = r.get("vs_ridge_percent")
        steps = ", ".join("-" if s is None else str(s) for s in r["switch_steps"])
        params = r["trainable_params_low"]
        lines.append(
            f"| {r['app']} | {r['policy']} | {r['backend']} | {_pm(r['test_mse'])} ({n}) | "
            f"{_pm(vs, '+.1f', ' %') if vs else '-'} | {_pm(vr, '+.1f', ' %') if vr else '-'} | "
            f"{r['low_param_fraction']['mean']:.2f} | {steps} | "
            f"{_fmt_params(params)} |")
    return "\n".join(lines) + "\n"


def plot_switch_curve(summary: dict, path: Path) -> Path | None:
    """The ``switch-at`` runs' test MSE against f, one panel per app: the paired
    difference from full training on the same seeds (mean ± 95 % CI, in %), with the ±2 %
    band; the points of the switch policies are marked at their mean f. None without
    ``switch-at`` runs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    apps = sorted({r["app"] for r in summary.values() if r["policy"].startswith("switch-at")})
    if not apps:
        return None
    fig, axes = plt.subplots(1, len(apps), figsize=(4.2 * len(apps), 3.4), squeeze=False)
    for ax, app in zip(axes[0], apps):
        rows = [r for r in summary.values() if r["app"] == app and r.get("vs_full_percent")]
        pts = sorted((r["low_param_fraction"]["mean"], r["vs_full_percent"]) for r in rows
                     if r["policy"].startswith("switch-at"))
        ax.errorbar([p[0] for p in pts], [p[1]["mean"] for p in pts],
                    yerr=np.nan_to_num([p[1]["ci95"] for p in pts]), marker="o", capsize=3,
                    label="switch-at (LoRA r=8 after)")
        for r in rows:
            if not r["policy"].startswith("switch-at") and r["policy"] != "lora":
                ax.errorbar(r["low_param_fraction"]["mean"], r["vs_full_percent"]["mean"],
                            yerr=np.nan_to_num(r["vs_full_percent"]["ci95"]), marker="s",
                            capsize=3, linestyle="none", label=r["policy"])
        ax.axhspan(-2, 2, color="grey", alpha=0.2, label="within ±2 % of full")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(app)
        ax.set_xlabel("f: share of iterations after the switch")
        ax.set_ylabel("test MSE vs full, paired (%)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def step_time_benchmark(iters: int = 30) -> dict:
    """Milliseconds per low-parameter training step, torch vs functional backend (tiny)."""
    import torch
    from hw.manycore import preset
    from sw.device.backends import make_backend
    from sw.data import DataConfig, load
    from sw.model.hybrid import apply_lora, set_backend
    from sw.model.transformer import ModelConfig, SpatialTransformer

    data = load(DataConfig(app="wind"))
    X = torch.from_numpy(data.train.X[:32])
    y = torch.from_numpy(data.train.y[:32])
    runs = {}
    for name in ("torch", "functional"):
        torch.manual_seed(0)
        model = SpatialTransformer.for_data(ModelConfig.preset("tiny"), data)
        apply_lora(model, 8)
        set_backend(model, make_backend(name, preset("atleus")))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        runs[name] = (model, opt, [])

    def step(model, opt):
        loss = torch.nn.functional.mse_loss(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    # interleaved, so that both see the same machine; the median step of each
    for i in range(iters + 5):
        for model, opt, times in runs.values():
            t0 = time.perf_counter()
            step(model, opt)
            if i >= 5:
                times.append(time.perf_counter() - t0)
    out = {name: float(np.median(times)) * 1e3 for name, (_, _, times) in runs.items()}
    return {"name": "host_low_param_step_ms", "torch_ms": out["torch"],
            "functional_ms": out["functional"], "ratio": out["functional"] / out["torch"],
            "target_ratio_max": 3.0, "what": "tiny preset, wind, batch 32 time steps x 32 "
            "stations, LoRA r=8 on Q/V, hpt mapping (every product routed), atleus manycore"}


def busy_machine_benchmark(iters: int = 20) -> dict:
    """Milliseconds per full-parameter training step (tiny preset, wind, batch 32) with
    torch's default threads (one per core: the behaviour before ``--threads``) against one
    thread (``hpt train``'s default), on an idle machine and while another process spins
    on one core, as on a shared machine. OpenMP threads that wait for a core held by
    another process spin in their barriers, so the busy case shows the cost of the
    default."""
    import subprocess
    import sys

    import torch
    from sw.data import DataConfig, load
    from sw.model.transformer import ModelConfig, SpatialTransformer

    data = load(DataConfig(app="wind"))
    X = torch.from_numpy(data.train.X[:32])
    y = torch.from_numpy(data.train.y[:32])
    torch.manual_seed(0)
    model = SpatialTransformer.for_data(ModelConfig.preset("tiny"), data)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    def median_step_ms(threads: int) -> float:
        torch.set_num_threads(threads)
        times = []
        for i in range(iters + 3):
            t0 = time.perf_counter()
            loss = torch.nn.functional.mse_loss(model(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i >= 3:
                times.append(time.perf_counter() - t0)
        return float(np.median(times)) * 1e3

    out = {"name": "host_busy_machine_step_ms", "cores": cores, "default_threads": before}
    try:
        for case in ("idle", "busy"):
            hog = (subprocess.Popen([sys.executable, "-c", "while True: pass"])
                   if case == "busy" else None)
            try:
                time.sleep(0.5 if hog else 0)
                out[f"{case}_default_ms"] = median_step_ms(before)
                out[f"{case}_one_thread_ms"] = median_step_ms(1)
            finally:
                if hog:
                    hog.kill()
                    hog.wait()
    finally:
        torch.set_num_threads(before)
    out["ratio"] = out["busy_default_ms"] / out["busy_one_thread_ms"]
    out["what"] = ("tiny preset, wind, batch 32, full-parameter torch step; busy: another "
                   "process spins on one core; ratio = default threads / one thread, busy")
    return out
