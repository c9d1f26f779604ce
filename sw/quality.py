"""Quality benchmark (``hpt quality``): apps x policies x backends x seeds, tiny preset.

Each run is an ordinary ``hpt train`` run folder under the output directory; the summary
compares the mean ``test_mse`` (best-validation checkpoint, normalised units) of every
policy with ``full`` per app and backend, and reports where the switch fired, when, and
the share of iterations run in the low-parameter mode.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["run_grid", "summarise", "step_time_benchmark"]

APPS = ("swe", "weather", "wind", "epidemic")
POLICIES = ("full", "paper", "intrinsic-dim", "lora")


def _one(job) -> dict:
    """Train one run (or read its finished metrics). ``job``: (app, policy, backend, seed,
    epochs, out) or a dict with those and optional ``preset``, ``mapping``, ``hw`` (a
    ManycoreConfig dict) and ``name`` (the run folder's name)."""
    import torch
    torch.set_num_threads(1)
    from hw.manycore import ManycoreConfig
    from sw.data import DataConfig
    from sw.model import ModelConfig
    from sw.policy import PolicyConfig
    from sw.train import RunConfig, TrainConfig, Trainer

    if not isinstance(job, dict):
        job = dict(zip(("app", "policy", "backend", "seed", "epochs", "out"), job))
    app, policy, backend, seed = job["app"], job["policy"], job["backend"], job["seed"]
    name = job.get("name") or f"{app}_{policy}_{backend}_s{seed}"
    run_dir = Path(job["out"]) / name
    if (run_dir / "metrics.json").is_file():
        return json.loads((run_dir / "metrics.json").read_text())
    extra = {"hw": ManycoreConfig.from_dict(job["hw"])} if job.get("hw") else {}
    cfg = RunConfig(model=ModelConfig.preset(job.get("preset", "tiny")),
                    data=DataConfig(app=app, seed=seed),
                    train=TrainConfig(epochs=job["epochs"], seed=seed, backend=backend,
                                      mapping=job.get("mapping", "hpt")),
                    policy=PolicyConfig(name=policy), **extra)
    return Trainer(cfg, run_dir, quiet=True).fit()


def run_grid(out: Path, apps=APPS, policies=POLICIES, backends=("torch",), seeds=(0, 1, 2),
             epochs: int = 20, jobs: int = 2) -> list[dict]:
    jobs_list = [(a, p, b, s, epochs, str(out)) for a in apps for b in backends for p in policies
                 for s in seeds if not (p == "full" and b != backends[0])]
    return run_jobs(jobs_list, jobs)


def run_jobs(jobs_list, jobs: int = 2) -> list[dict]:
    """Train the runs of ``jobs_list`` (see :func:`_one`) on ``jobs`` worker processes
    (always in workers: each sets torch to one thread, which must not leak into the
    caller, whose numbers depend on its thread count)."""
    with ProcessPoolExecutor(max_workers=max(jobs, 1)) as pool:
        return list(pool.map(_one, jobs_list))


def summarise(results: list[dict]) -> tuple[dict, str]:
    table: dict = {}
    for r in results:
        key = (r["app"], r["policy"], "torch" if r["policy"] == "full" else r["backend"])
        table.setdefault(key, []).append(r)
    summary, lines = {}, [
        "| app | policy | backend | mean test MSE (3 seeds) | vs full | switch fired | switch step | low-param fraction |",
        "|---|---|---|---|---|---|---|---|"]
    for (app, policy, backend), runs in sorted(table.items()):
        mse = float(np.mean([r["test_mse"] for r in runs]))
        full = table.get((app, "full", "torch"))
        ref = float(np.mean([r["test_mse"] for r in full])) if full else float("nan")
        fired = sum(r["switch_step"] is not None for r in runs)
        steps = [r["switch_step"] for r in runs if r["switch_step"] is not None]
        frac = float(np.mean([r["low_param_fraction"] for r in runs]))
        rel = (mse - ref) / ref * 100
        summary[f"{app}/{policy}/{backend}"] = {
            "test_mse_mean": mse, "test_mse_seeds": [r["test_mse"] for r in runs],
            "vs_full_percent": rel, "switch_fired": fired, "runs": len(runs),
            "switch_steps": steps, "low_param_fraction_mean": frac}
        lines.append(f"| {app} | {policy} | {backend} | {mse:.4f} | {rel:+.1f} % | {fired}/{len(runs)}"
                     f" | {', '.join(map(str, steps)) or '-'} | {frac:.2f} |")
    return summary, "\n".join(lines) + "\n"


def step_time_benchmark(iters: int = 30) -> dict:
    """Milliseconds per low-parameter training step, torch vs functional backend (tiny)."""
    import torch
    from hw.manycore import preset
    from sw.backends import make_backend
    from sw.data import DataConfig, load
    from sw.hybrid import apply_lora, set_backend
    from sw.model import ModelConfig, SpatialTransformer

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
