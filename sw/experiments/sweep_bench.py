"""Benchmarks of the sweep engine (``hpt bench --only sweep``).

* ``sweep_cost_points``: a cost sweep of 10,000 hardware points over one finished run
  (a small wind run trained first, switch-at), end to end on the default engine (Ray,
  this machine's cores): resolution, costing with the fidelity proxy, results and every
  output. Points per second, with the costing alone.
* ``quality_grid_engines``: a reduced quality grid (2 apps x 2 policies x 2 seeds, tiny
  preset, 10 epochs) on the serial engine and on Ray with this machine's cores, in one
  run; the metrics must agree bit for bit.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

__all__ = ["bench_sweep", "COST_AXES"]

#: 5 x 2 x 5 x 5 x 4 x 5 x 2 = 10,000 hardware points
COST_AXES = (("tile.adc_bits", (6, 7, 8, 9, 10)), ("tile.cell_bits", (1, 2)),
             ("tile.rows", (32, 64, 128, 256, 512)), ("systolic_cores", (1, 2, 4, 8, 16)),
             ("systolic.rows", (16, 32, 64, 128)), ("replication", (1, 2, 4, 8, None)),
             ("links.hops", (1, 2)))


def _small_run(out: Path) -> Path:
    from hw.manycore import preset
    from sw.data import DataConfig
    from sw.model.transformer import ModelConfig
    from sw.train.policy import PolicyConfig
    from sw.train.trainer import RunConfig, TrainConfig, Trainer
    d = out / "run"
    if not (d / "metrics.json").is_file():
        cfg = RunConfig(model=ModelConfig.preset("tiny"),
                        data=DataConfig(app="wind", steps=400, stations=8),
                        train=TrainConfig(epochs=3, device="cpu"),
                        policy=PolicyConfig(name="switch-at", switch_at=10),
                        hw=preset("atleus"))
        Trainer(cfg, d, quiet=True).fit()
    return d


def bench_sweep(out: Path = Path("build/bench_sweep"), quality: bool = True) -> list[dict]:
    from sw.experiments.quality import run_grid
    from sw.experiments.sweep import SweepSpec, run_sweep
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cpus = os.cpu_count() or 1
    run = _small_run(out)
    spec = SweepSpec(name="bench", kind="cost", axes=COST_AXES, runs=(str(run),))
    shutil.rmtree(out / "cost", ignore_errors=True)
    t0 = time.perf_counter()
    s = run_sweep(spec, out / "cost", engine="ray", cpus=cpus, quiet=True)
    wall = time.perf_counter() - t0
    n = len(s["points"])
    results = [{"name": "sweep_cost_points", "points": n, "engine": "ray", "cpus": cpus,
                "wall_s": wall, "points_per_s": n / wall, "engine_s": s["wall_s"],
                "engine_points_per_s": n / s["wall_s"],
                "ok": sum(r["status"] == "ok" for r in s["points"]),
                "infeasible": s["infeasible"], "failed": s["failed"],
                "what": "10,000 hardware points (ADC bits, cell bits, crossbar rows, systolic "
                        "cores and rows, replication, NoC hops) re-costing one small wind run, "
                        "end to end (resolve, cost + fidelity proxy, CSV/JSON/plots)"}]
    if quality:
        grid = dict(apps=("wind", "swe"), policies=("full", "paper"), seeds=(0, 1), epochs=10)
        times, metrics = {}, {}
        for engine in ("serial", "ray"):
            d = out / f"quality_{engine}"
            shutil.rmtree(d, ignore_errors=True)
            t0 = time.perf_counter()
            rs = run_grid(d, jobs=cpus, engine=engine, **grid)
            times[engine] = time.perf_counter() - t0
            metrics[engine] = [{k: v for k, v in r.items() if k != "time_per_phase_s"}
                               for r in rs]
        results.append({"name": "quality_grid_engines", "runs": len(metrics["ray"]),
                        "serial_s": times["serial"], "ray_s": times["ray"], "cpus": cpus,
                        "ratio": times["serial"] / times["ray"],
                        "equal_metrics": metrics["serial"] == metrics["ray"],
                        "what": "quality grid wind+swe x full+paper x seeds 0,1, tiny preset, "
                                "10 epochs, torch backend: serial engine vs Ray on this "
                                "machine's cores (speedup = ratio)"})
    return results
