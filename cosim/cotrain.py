"""``hpt train --backend rtl``: build the chip for the run, then train inside the simulator.

The chip is the run's :class:`hw.manycore.ManycoreConfig` (``RunConfig.hw``), which must
be one the RTL implements (:func:`hw.chip.check_chip`: one systolic core, at most
:data:`hw.chip.MAX_TILES` blocks) and must hold the frozen matrices the run's mapping
puts in ReRAM (:func:`hw.placement.place`; both are checked before anything is built or
written). The training loop runs in the simulator process (:mod:`cosim.tb_train`); its
progress lines are copied from the simulator log to this terminal as they appear.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from hw.toolchain import ToolchainError

__all__ = ["chip_for", "cotrain"]


def chip_for(cfg):
    """The chip of an rtl run: the run's manycore, checked to be simulable and to hold the
    frozen matrices (one clear error otherwise)."""
    from hw.chip import check_chip
    from hw.placement import place
    from sw.model.hybrid import frozen_shapes
    check_chip(cfg.hw)
    place(cfg.hw, frozen_shapes(cfg.model, cfg.train.mapping, cfg.policy.lora_targets))
    return cfg.hw


def _follow(log: Path, stop: threading.Event, out) -> None:
    """Copy progress lines (those the trainer prints) from the simulator log."""
    while not log.exists() and not stop.is_set():
        time.sleep(0.2)
    if not log.exists():
        return
    with open(log, errors="replace") as f:
        while True:
            line = f.readline()
            if not line:
                if stop.is_set():
                    break
                time.sleep(0.2)
                continue
            if line.startswith("[") and "/" in line[:60] or line.startswith("building"):
                out.write(line)
                out.flush()


def cotrain(cfg, run_dir: Path, *, resume: bool = False, quiet: bool = False,
            waves=None) -> dict:
    """Run (or resume) a co-simulated training; returns the metrics.

    ``waves = (file, from_cycle, cycles)`` dumps that window of the chip into an FST (a
    second build of the chip, with tracing). Ctrl-C stops the run after the current step
    with a checkpoint and raises :class:`sw.train.trainer.Interrupted`.
    """
    from cocotb_tools.check_results import get_results

    from sw.train.trainer import Interrupted, stop_on_sigint

    from .sim import build_chip_sim, toolchain_env, verilator_runner, wave_plusargs

    run_dir = Path(run_dir)
    chip = chip_for(cfg)                     # a chip that cannot hold the weights: no run dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"building the chip {chip.name} (1 systolic {chip.systolic.rows}x"
              f"{chip.systolic.cols}, {chip.blocks} tiles {chip.tile.rows}x{chip.tile.cols}); "
              "reused when built before", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    sim = build_chip_sim(chip, waves=waves is not None)
    plusargs = wave_plusargs(sim, waves) if waves is not None else []
    build_s = time.perf_counter() - t0
    for stale in ("error.txt", "sim.log", "interrupted.json"):
        (run_dir / stale).unlink(missing_ok=True)
    import torch
    # the simulator's torch uses this process's thread count: CPU reductions depend on
    # it, and a co-simulated run must give an in-process functional run's numbers
    job = {"run_dir": str(run_dir.resolve()), "config": cfg.to_dict(), "resume": resume,
           "quiet": quiet, "torch_threads": torch.get_num_threads(),
           "train": {"rtl_sample": cfg.train.rtl_sample, "check": cfg.train.check,
                     "seed": cfg.train.seed}}
    log = run_dir / "sim.log"
    xml = run_dir / "results.xml"
    env = {"HPT_CONFIG": json.dumps(chip.to_dict()), "HPT_TRAIN": json.dumps(job)}
    stop = threading.Event()
    follower = threading.Thread(target=_follow, args=(log, stop, sys.stderr), daemon=True)
    if not quiet:
        follower.start()
    t0 = time.perf_counter()
    try:
        # Ctrl-C reaches the simulator too (same process group): both ask the trainer to
        # stop after its step (the simulator's handler, and the STOP file from here)
        with toolchain_env(), stop_on_sigint(lambda: (run_dir / "STOP").touch()):
            try:
                verilator_runner().test(
                    test_module="cosim.tb_train", hdl_toplevel=sim.top,
                    hdl_toplevel_lang="verilog", build_dir=sim.build_dir,
                    test_dir=run_dir.resolve(), extra_env=env, plusargs=plusargs,
                    results_xml=str(xml.resolve()), log_file=log)
            except SystemExit:
                pass
    finally:
        stop.set()
        if follower.is_alive():
            follower.join(timeout=2)
    stopped = run_dir / "interrupted.json"
    if stopped.is_file():
        raise Interrupted(json.loads(stopped.read_text())["step"], run_dir)
    err = run_dir / "error.txt"
    if err.is_file():
        first = err.read_text().split("\n\n")[0]
        raise RuntimeError(f"co-simulated training stopped: {first}\n(details: {err}; "
                           f"simulator log: {log})")
    try:
        tests, failed = get_results(xml)
    except RuntimeError:
        raise ToolchainError(f"the simulator died before finishing; full log: {log}") from None
    if failed or not (run_dir / "metrics.json").is_file():
        raise ToolchainError(f"co-simulated training failed; full log: {log}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rtl = json.loads((run_dir / "rtl.json").read_text())
    rtl.update(build_seconds=build_s, simulation_wall_seconds=time.perf_counter() - t0)
    (run_dir / "rtl.json").write_text(json.dumps(rtl, indent=1) + "\n")
    return metrics


def demo_config():
    """``make demo``: the tiny preset on the built-in wind app (4 stations), intrinsic-dim
    switch, every low-parameter op on the RTL and checked, on the ``demo`` manycore (one
    16x16 core, sixteen ideal 64x64 tiles holding every frozen matrix) under the ``hpt``
    mapping."""
    from hw.manycore import preset
    from sw.data import DataConfig
    from sw.model.transformer import ModelConfig
    from sw.train.policy import PolicyConfig
    from sw.train.trainer import RunConfig, TrainConfig
    return RunConfig(model=ModelConfig.preset("tiny"),
                     data=DataConfig(app="wind", steps=240, stations=4),
                     train=TrainConfig(epochs=2, batch=4, backend="rtl", mapping="hpt"),
                     policy=PolicyConfig(name="intrinsic-dim", k=3),
                     hw=preset("demo"))


def write_report(run_dir: Path, wall_s: float | None = None) -> Path:
    """``report.md`` of a co-simulated run: quality, switch, op checks, RTL cycles per
    unit and op, overlap, simulation rate."""
    run_dir = Path(run_dir)
    m = json.loads((run_dir / "metrics.json").read_text())
    rtl = json.loads((run_dir / "rtl.json").read_text())
    trace = json.loads((run_dir / "trace.json").read_text())
    chk = rtl["op_checks"] or {}
    rows = {}
    for r in trace:
        if "rtl_cycles" not in r:
            continue
        key = (r["phase"], r["unit"], r["op"])
        agg = rows.setdefault(key, {"count": 0, "rtl_cycles": 0, "cycles_model": None})
        agg["count"] += r["count"]
        agg["rtl_cycles"] += r["rtl_cycles"]
        if "cycles_model" in r:
            agg["cycles_model"] = (agg["cycles_model"] or 0) + r["cycles_model"]
    chip = rtl["chip"]
    lines = [
        f"# Co-simulated training run: {run_dir}", "",
        f"- chip: systolic {chip['systolic']['rows']}x{chip['systolic']['cols']} "
        f"(int{chip['systolic']['in_width']}), {chip['reram_cores'] * chip['tiles_per_core']} ReRAM tiles "
        f"{chip['tile']['rows']}x{chip['tile']['cols']} ({chip['tile']['cell_bits']}-bit cells)",
        f"- switch step {m['switch_step']} of {m['total_steps']} (low-parameter fraction "
        f"{m['low_param_fraction']:.2f}), ranks {m['ranks']}",
        f"- test MSE {m['test_mse']:.4f} (best validation epoch {m['best_epoch']}), "
        f"final {m['final_test_mse']:.4f} (normalised units)",
        f"- hardware ops on the RTL: {chk.get('rtl', 0)}, checked against the functional models: "
        f"{chk.get('checked', 0)}, mismatches: {chk.get('mismatches', 0)}, functional only: "
        f"{chk.get('functional_only', 0)}",
        f"- simulated cycles {rtl['rtl_cycles']:,} in {rtl['rtl_sim_seconds']:.1f} s of harness "
        f"runs ({rtl['rtl_cycles'] / max(rtl['rtl_sim_seconds'], 1e-9) / 1e3:.0f} k cycles/s); "
        f"systolic/tile overlap {rtl['rtl_overlap_cycles']:,} cycles",
        f"- chip build {rtl.get('build_seconds', 0):.0f} s, simulator run "
        f"{rtl.get('simulation_wall_seconds', 0):.0f} s"
        + (f", whole command {wall_s:.0f} s" if wall_s is not None else ""), "",
        "| phase | unit | op | count | RTL cycles | cycle model |", "|---|---|---|---|---|---|"]
    for (phase, unit, op), a in sorted(rows.items()):
        model = "n/a" if a["cycles_model"] is None else f"{a['cycles_model']:,}"
        lines.append(f"| {phase} | {unit} | {op} | {a['count']} | {a['rtl_cycles']:,} | "
                     f"{model} |")
    lines += ["", "RTL cycles include one harness cycle per run (`rtl_runs` in trace.json); "
              "the cycle model is each unit's (systolic "
              "`SystolicConfig.matmul_cycles`, tile `TileConfig.mvm_latency`, the tiles of a matrix at once).",
              "", "Files: metrics.json, trace.json (per op: unit, shapes, counts, RTL cycles), "
              "history.json, loss.png (switch marked), rtl.json, checkpoint.pt, sim.log."]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
