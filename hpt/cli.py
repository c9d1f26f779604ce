"""``hpt``: the command line of the HpT co-design harness.

    hpt verilog systolic --rows 16 --cols 16 --in-width 8 --out build/verilog [--lint]
    hpt verilog reram-tile --rows 128 --cols 128 --cell-bits 2 --adc-bits 8 --out build/verilog
    hpt verilog chip --sa-rows 16 --sa-cols 16 --tiles 4 --tile-rows 64 --tile-cols 64 --ideal
    hpt sim systolic --rows 4 --cols 4 --in-width 8      # cocotb testbench under Verilator
    hpt sim reram-tile --rows 8 --cols 3 --ideal
    hpt train --app wind --policy paper --backend functional --out build/runs/wind
    hpt train --resume --out build/runs/wind               # after Ctrl-C or a crash
    hpt train --app wind --stations 4 --backend rtl --tile-rows 64 --tile-cols 64 --out DIR
    hpt demo                                               # co-simulated run -> build/demo
    hpt quality [--backends torch functional]              # apps x policies x seeds table
    hpt fidelity                                           # ReRAM MVM error vs ADC/cell bits
    hpt bench [--only systolic|utilisation|reram-tile|chip|host|sweep]   # build/bench.json
    hpt report RUN_DIR [RUN_DIR ...] --out build/report    # HpT vs GPU-only time and energy
    hpt compare --out build/compare                        # 4 apps x policies x mappings
    hpt sensitivity RUN_DIR [RUN_DIR ...]                  # whole-run ratios vs each factor
    hpt sweep --cost RUN_DIR --axis tile.adc_bits=6,8,9 --axis systolic.rows=8,16 --out DIR
    hpt sweep spec.toml [--engine ray|serial] [--address auto]   # DSE on Ray, Pareto front
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["main"]


def config_fields(cls, choices: dict | None = None) -> list[tuple]:
    """``(flag, field, type, default, choices)`` for every field of the config dataclass
    ``cls``: a configuration's command-line flags are its fields, named with dashes (the
    one rule for every block's flags, so a new field gets its flag). The type follows the
    default (``None``: derived by the config, given as an integer); ``choices`` per field."""
    import dataclasses
    choices = choices or {}
    out = []
    for f in dataclasses.fields(cls):
        kind = (str if f.name in choices or isinstance(f.default, str)
                else float if isinstance(f.default, float) else int)
        out.append((f.name.replace("_", "-"), f.name, kind, f.default, choices.get(f.name)))
    return out


def tile_fields() -> list[tuple[str, str, type, object, tuple | None]]:
    """:func:`config_fields` of :class:`TileConfig`."""
    from hw.reram import ADC_CALIBRATIONS, ENCODINGS, TileConfig
    from hw.reram.device import DEVICES
    return config_fields(TileConfig, {"device": tuple(DEVICES), "encoding": ENCODINGS,
                                      "adc_calibration": ADC_CALIBRATIONS})


def _systolic_fields():
    from hw.systolic import SystolicConfig
    return config_fields(SystolicConfig)


def _add_config_args(p: argparse.ArgumentParser, fields, cls_name: str, prefix: str = "",
                     what: str = "", notes: dict | None = None) -> None:
    notes = notes or {}
    for flag, field, kind, default, choices in fields:
        shown = "derived" if default is None else default
        p.add_argument(f"--{prefix}{flag}", type=kind, default=default, choices=choices,
                       help=f"{what}{cls_name}.{field} (default {shown}"
                            + notes.get(field, "") + ")")


def _config_from_args(cls, fields, args, prefix: str = ""):
    return cls(**{field: getattr(args, (prefix + flag).replace("-", "_"))
                  for flag, field, *_ in fields})


def _add_systolic_args(p: argparse.ArgumentParser, prefix: str = "", what: str = "") -> None:
    _add_config_args(p, _systolic_fields(), "SystolicConfig", prefix, what,
                     {"acc_width": ": 2*in-width+16, at most 64"})


def _systolic_config(args, prefix: str = ""):
    from hw.systolic import SystolicConfig
    return _config_from_args(SystolicConfig, _systolic_fields(), args, prefix)


def _add_tile_args(p: argparse.ArgumentParser, prefix: str = "", what: str = "") -> None:
    _add_config_args(p, tile_fields(), "TileConfig", prefix, what,
                     {"seed": "; tile k gets seed + k"} if prefix else {})
    p.add_argument("--ideal", action="store_true",
                   help="no variation, faults or noise, and a lossless ADC")


def _tile_config(args, prefix: str = ""):
    from hw.reram import TileConfig
    cfg = _config_from_args(TileConfig, tile_fields(), args, prefix)
    return cfg.ideal() if args.ideal else cfg


def _add_chip_args(p: argparse.ArgumentParser) -> None:
    _add_systolic_args(p, "sa-", "systolic ")
    _add_tile_args(p, "tile-", "every tile's ")
    p.add_argument("--tiles", type=int, default=4, help="ReRAM tiles K (default %(default)s)")


def _chip_config(args):
    from hw.manycore import ManycoreConfig
    sa = _systolic_config(args, "sa-")
    tile = _tile_config(args, "tile-")
    cfg = ManycoreConfig.single(sa, tile, args.tiles)
    from hw.chip import check_chip
    check_chip(cfg)
    return cfg


def cmd_verilog_chip(args) -> int:
    from hw.chip import generate_chip
    from hw.lint import lint
    cfg = _chip_config(args)                  # a bad parameter stops before any file
    paths = generate_chip(cfg, args.out)
    for v in paths:
        print(f"wrote {v}\nwrote {v.with_suffix('.json')}")
    if args.lint:
        lint(paths[-1], cfg.name, extra=paths[:-1])
        print(f"lint: verilator --lint-only -Wall clean for {cfg.name} and its modules")
    return 0


def _block(args):
    """(component, config) for the block named on the command line."""
    if args.block == "systolic":
        from hw.systolic import SystolicCore
        cfg = _systolic_config(args)
        return SystolicCore(cfg), cfg
    from hw.reram import ReramTile
    cfg = _tile_config(args)
    return ReramTile(cfg), cfg


def cmd_verilog(args) -> int:
    from hw.lint import lint
    from hw.verilog import generate

    core, cfg = _block(args)
    v_path, j_path = generate(core, cfg.name, args.out, config=cfg.to_dict())
    print(f"wrote {v_path}\nwrote {j_path}")
    if args.lint:
        lint(v_path, cfg.name)
        print(f"lint: verilator --lint-only -Wall clean for {v_path}")
    return 0


def cmd_sim(args) -> int:
    from cosim.sim import build_systolic_sim, build_tile_sim, run_cocotb

    _, cfg = _block(args)
    print(f"building {cfg.name} (cached under build/sim/) ...", flush=True)
    if args.block == "systolic":
        sim, module = build_systolic_sim(cfg), "cosim.tb_systolic"
    else:
        sim, module = build_tile_sim(cfg), "cosim.tb_reram"
    tests, failed, log = run_cocotb(sim, module, testcase=args.test or None, seed=args.cocotb_seed)
    print(f"{tests - failed} passed, {failed} failed  (log: {log})")
    return 1 if failed or not tests else 0


def cmd_bench(args) -> int:
    from cosim.bench import (bench_chip, bench_systolic, bench_systolic_utilisation, bench_tile,
                             merge_results)

    results = []
    if args.only in (None, "systolic"):
        results += bench_systolic(repeats=args.repeats)
    if args.only in (None, "systolic", "utilisation"):
        results += bench_systolic_utilisation()
    if args.only in (None, "reram-tile"):
        results += bench_tile(repeats=args.repeats)
    if args.only in (None, "chip"):
        results += bench_chip(repeats=args.repeats)
    if args.only in (None, "host"):
        from sw.experiments.quality import busy_machine_benchmark, step_time_benchmark
        results.append(step_time_benchmark())
        results.append(busy_machine_benchmark())
    if args.only in (None, "sweep"):
        from sw.experiments.sweep_bench import bench_sweep
        results += bench_sweep()
    path = merge_results(results, args.out)
    for r in results:
        extra = f"  ratio {r['ratio']:.2f}" if "ratio" in r else ""
        if "utilisation_rtl" in r:
            rate = (f"PE utilisation {r['utilisation_rtl']:6.1%} (SCALE-Sim "
                    f"{r['utilisation_scalesim']:6.1%}), cycles {r['cycles_over_scalesim']:.2f}x "
                    "SCALE-Sim's")
        elif "mvm_per_s" in r:
            rate = f"{r['mvm_per_s']:9.1f} MVM/s"
        elif "cycles_per_s" in r:
            rate = f"{r['cycles_per_s'] / 1e6:6.3f} M cycles/s"
        elif "points_per_s" in r:
            rate = (f"{r['points']} points in {r['wall_s']:.1f} s: {r['points_per_s']:.0f} "
                    f"points/s end to end, {r['engine_points_per_s']:.0f}/s in the engine "
                    f"({r['engine']}, {r['cpus']} CPUs)")
        elif "serial_s" in r:
            rate = (f"{r['runs']} runs: serial {r['serial_s']:.1f} s, Ray {r['ray_s']:.1f} s "
                    f"({r['cpus']} CPUs), metrics {'equal' if r['equal_metrics'] else 'DIFFER'}")
        elif "busy_default_ms" in r:
            rate = (f"busy machine: {r['default_threads']} threads {r['busy_default_ms']:.1f} "
                    f"ms/step, 1 thread {r['busy_one_thread_ms']:.1f}; idle: "
                    f"{r['idle_default_ms']:.1f} vs {r['idle_one_thread_ms']:.1f}")
        else:
            rate = f"torch {r['torch_ms']:.1f} ms/step, functional {r['functional_ms']:.1f} ms/step"
        print(f"{r['name']:45s} {rate}{extra}")
    print(f"wrote {path}")
    return 0


def cmd_fidelity(args) -> int:
    from hw.reram import DEVICES
    from sw.device.fidelity import budget, drift, plot, sweep

    base = _tile_config(args)
    drifting = list(args.drift_devices)
    bad = [d for d in drifting if not DEVICES[d].drifts]
    if bad:                                  # before anything runs
        choices = [d for d, m in DEVICES.items() if m.drifts and "-part-" not in d]
        raise ValueError(f"--drift-devices: {bad[0]!r} does not change after programming "
                         f"(choose from {choices})")
    result = sweep(base, devices=args.devices, encodings=args.encodings,
                   adc_bits=args.sweep_adc_bits, calibrations=args.calibrations,
                   cell_bits=args.sweep_cell_bits, vectors=args.vectors, seed=args.data_seed,
                   progress=None if args.quiet else
                   lambda i, n: print(f"\r  {i}/{n} series", end="", file=sys.stderr, flush=True))
    if not args.quiet:
        print(file=sys.stderr)
    dr = drift(base, devices=drifting, encodings=args.encodings, times=args.times,
               vectors=args.vectors, seed=args.data_seed) if drifting else None
    gaussian = [d for d in args.devices if DEVICES[d].kind == "gaussian"
                and "-part-" not in d]
    bud = budget(base, devices=gaussian, encodings=args.encodings, vectors=args.vectors,
                 seed=args.data_seed) if gaussian else None
    paths = plot(result, args.out, dr, bud)
    bits = " ".join(f"{b:>6d}" for b in result["adc_bits"])
    print(f"MVM error vs the float product, percent; columns: ADC bits\n"
          f"{'device':14s} {'encoding':12s} {'range':7s} cells {bits}")
    for s in result["series"]:
        errs = " ".join(f"{e:6.3g}" for e in s["vs_float_pct"])
        print(f"{s['device']:14s} {s['encoding']:12s} {s['calibration']:7s} {s['cell_bits']:5d} "
              f"{errs}")
    print(f"int8 quantization alone (lossless ADC, no device error): "
          f"{result['int8_floor_pct']:.3g} %")
    if bud:
        print("\nError budget at a lossless ADC, percent: MVM vs float, MVM vs int8, programmed "
              "weights vs int8 weights")
        for r in bud["rows"]:
            print(f"{r['device']:14s} {r['encoding']:12s} {r['part']:30s} "
                  f"{r['vs_float_pct']:6.3g} {r['vs_int8_pct']:6.3g} {r['weight_error_pct']:6.3g}")
    if dr:
        print("\nMVM error vs the int8 product, percent, lossless ADC; columns: seconds after "
              "programming " + " ".join(f"{t:.3g}" for t in dr["times_s"]))
        for s in dr["series"]:
            print(f"{s['device']:14s} {s['encoding']:12s} "
                  + " ".join(f"{e:6.3g}" for e in s["vs_int8_pct"]))
    for p in paths:
        print(f"wrote {p}")
    return 0


def cmd_realism(args) -> int:
    from sw.experiments.realism import format_table, run, summarise
    rows = run(args.out, apps=args.apps, seeds=args.seeds, epochs=args.epochs,
               fraction=args.fraction, fitted=args.fitted, ages=args.ages, jobs=args.jobs,
               engine=args.engine, address=args.address)
    table = format_table(summarise(rows))
    path = args.out / "realism.md"
    path.write_text(f"Training on realistic ReRAM: switch-at f = {args.fraction}, "
                    f"{args.epochs} epochs, fitted device {args.fitted}, functional backend\n\n"
                    + table)
    print(table)
    print(f"wrote {path} (+ realism.json)")
    return 0


def cmd_train(args) -> int:
    import torch
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, not {args.threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _train(args)
    finally:                                  # main() may be called in a longer process
        torch.set_num_threads(before)


def _train(args) -> int:
    from sw.data import DataConfig
    from sw.model.transformer import ModelConfig
    from sw.train.policy import PolicyConfig
    from sw.train.trainer import Interrupted, RunConfig, TrainConfig, Trainer, stop_on_sigint

    if args.resume:
        from sw.train.runfolder import load_checkpoint
        cfg = RunConfig.from_dict(load_checkpoint(args.out, "resume from")["config"])
    else:
        if (args.app is None) == (args.data is None):
            raise ValueError("give exactly one of --app and --data")
        data = DataConfig(app=args.app or "wind", path=str(args.data) if args.data else None,
                          window=args.window, horizon=args.horizon, seed=args.seed,
                          flow_kmh=args.flow_kmh,
                          **{k: v for k, v in (("steps", args.steps), ("stations", args.stations))
                             if v is not None})
        hw = _manycore(args)
        train = TrainConfig.recipe(args.preset, **_recipe(args), epochs=args.epochs,
                                   seed=args.seed, backend=args.backend, batch=args.batch,
                                   rtl_sample=args.rtl_sample, check=not args.no_check,
                                   device=args.device, mapping=args.mapping)
        targets = tuple(t.strip() for t in args.lora_targets.split(",") if t.strip())
        if args.switch_at is not None and args.policy is not None:
            raise ValueError("give --policy or --switch-at, not both (--switch-at is the "
                             "switch-at policy)")
        policy = "switch-at" if args.switch_at is not None else (args.policy or "paper")
        cfg = RunConfig(model=ModelConfig.preset(args.preset, **_model_overrides(args)),
                        data=data, train=train,
                        policy=PolicyConfig(name=policy, k=args.k, lora_targets=targets,
                                            switch_at=args.switch_at, ranks=args.ranks),
                        hw=hw)
    waves = None
    if args.waves is not None:
        if cfg.train.backend != "rtl":
            raise ValueError("--waves needs --backend rtl (waves are of the simulated chip)")
        waves = (args.waves, args.wave_from, args.wave_cycles)
    try:
        if cfg.train.backend == "rtl":
            from cosim.cotrain import cotrain
            m = cotrain(cfg, args.out, resume=args.resume, quiet=args.quiet, waves=waves)
            rtl = json.loads((args.out / "rtl.json").read_text())
            print(json.dumps({"op_checks": rtl["op_checks"], "rtl_cycles": rtl["rtl_cycles"]},
                             indent=1))
        else:
            trainer = Trainer.resume(args.out, quiet=args.quiet) if args.resume \
                else Trainer(cfg, args.out, quiet=args.quiet)
            with stop_on_sigint(trainer.stop):
                m = trainer.fit()
    except Interrupted as exc:
        print(f"\ninterrupted after step {exc.step}; resume with: hpt train --resume --out "
              f"{args.out}  (checkpoint {args.out / 'checkpoint.pt'})", file=sys.stderr)
        return 130
    print(json.dumps({k: m[k] for k in ("test_mse", "test_mae", "final_test_mse", "switch_step",
                                        "low_param_fraction", "ranks")}, indent=1))
    print(f"wrote {args.out}/metrics.json, trace.json, history.json, loss.png, checkpoint.pt")
    return 0


def cmd_demo(args) -> int:
    import time

    from cosim.cotrain import cotrain, demo_config, write_report
    t0 = time.perf_counter()
    cfg = demo_config()
    m = cotrain(cfg, args.out, quiet=args.quiet)
    report = write_report(args.out, wall_s=time.perf_counter() - t0)
    from sw.cost.report import DEFAULT_GPU, report as cost_report
    cost = cost_report([args.out], args.out / "cost")
    case = [c for c in json.loads((cost.parent / "report.json").read_text())["cases"]
            if c["case"] != "gpu-only"][0]
    with open(report, "a") as f:
        f.write(f"\nTime and energy of this run against GPU-only full training "
                f"(`hpt report`, cost model, {DEFAULT_GPU} roofline): "
                f"speedup {case['speedup']:.2f}x, energy reduction {case['energy_reduction']:.2f}x"
                f" -- see cost/report.md for the breakdown and assumptions.\n")
    print(report.read_text())
    print(f"wrote {report}")
    return 0 if m is not None else 1


def cmd_quality(args) -> int:
    from sw.experiments.quality import grid_baselines, plot_switch_curve, run_grid, summarise

    bad = [f for f in args.switch_fractions if not 0 < f < 1]
    if bad:
        raise ValueError(f"--switch-fractions must be shares in (0, 1), not {bad[0]}")
    data = _data_overrides(args)
    t0 = time.time()
    results = run_grid(args.out, apps=args.apps, policies=args.policies, backends=args.backends,
                       seeds=args.seeds, epochs=args.epochs, jobs=args.jobs,
                       switch_fractions=args.switch_fractions, horizon=args.horizon,
                       engine=args.engine, address=args.address, quiet=False,
                       rank_modes=args.ranks, steps=args.steps, recipe=_recipe(args),
                       preset=args.preset, model=_model_overrides(args), data=data)
    summary, table = summarise(results, grid_baselines(args.apps, args.seeds, args.horizon,
                                                       args.steps, data))
    protocol = (f"Protocol: preset {args.preset}, {args.steps or 'default'} steps, "
                f"{args.epochs} epochs, horizon {args.horizon}, seeds {args.seeds}, recipe "
                f"{_recipe(args)}, model {_model_overrides(args)}, weather flow "
                f"{args.flow_kmh:g} km/h.\n\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "summary.md").write_text(protocol + table)
    print(protocol + table)
    png = plot_switch_curve(summary, args.out / "switch_curve.png")
    print(f"wrote {args.out}/summary.json and summary.md" + (f" and {png}" if png else "")
          + f" ({len(results)} runs, {time.time() - t0:.0f} s)")
    return 0


def cmd_sweep(args) -> int:
    from sw.experiments.sweep import load_spec, run_sweep
    spec = load_spec(args.spec, axes=args.axis, fixed=args.fixed, runs=args.cost or (),
                     name=args.name, retries=args.retries, vectors=args.vectors)
    s = run_sweep(spec, args.out, engine=args.engine, address=args.address, cpus=args.cpus,
                  quiet=args.quiet)
    n = len(s["points"])
    print(f"{n} points: {n - s['failed'] - s['infeasible']} done, {s['infeasible']} "
          f"infeasible, {s['failed']} failed; ran {s['ran']} in {s['wall_s']:.1f} s, "
          f"reused {s['reused']}")
    for p in s["paths"].values():
        print(f"wrote {p}")
    if s["failed"]:
        print(f"hpt: {s['failed']} point(s) failed after retries: see {s['paths']['summary']} "
              "and their logs", file=sys.stderr)
        return 1
    return 0


def _tech(args) -> dict:
    """--tech FILE then --set NAME=VALUE pairs (later wins) into one override dict."""
    from sw.cost.estimate import technology
    tech = {}
    if args.tech is not None:
        technology(args.tech)                       # validates the file, naming it
        tech.update(json.loads(Path(args.tech).read_text()))
    for item in args.set or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected NAME=VALUE")
        tech[name.strip()] = value.strip()
    technology(tech)
    return tech


def cmd_report(args) -> int:
    from sw.cost.report import report
    path = report(args.runs, args.out, gpu=args.gpu, tech=_tech(args), dtype=args.dtype,
                  gpu_specs=args.gpu_specs, hw=_manycore(args))
    print(f"wrote {path} (+ report.json, breakdown.png, loss.png, intrinsic_dim.png, "
          "reram_wear.png)")
    return 0


def cmd_compare(args) -> int:
    from sw.cost.report import compare
    data = _data_overrides(args)
    path = compare(args.out, apps=args.apps, policies=args.policies, epochs=args.epochs,
                   seed=args.seed, jobs=args.jobs, presets=args.presets,
                   mappings=args.mappings, paper_epochs=args.paper_epochs,
                   manycore=_manycore(args), gpu=args.gpu, tech=_tech(args),
                   dtype=args.dtype, gpu_specs=args.gpu_specs, engine=args.engine,
                   address=args.address, model=_model_overrides(args), data=data)
    print(f"wrote {path}")
    return 0


def _add_manycore_args(p, default: str | None) -> None:
    from hw.manycore import PRESETS
    g = p.add_argument_group("manycore (hw.manycore.ManycoreConfig)")
    g.add_argument("--manycore", choices=list(PRESETS), default=default,
                   help="the accelerator" + (f" (default {default})" if default else
                                             " to cost every run on (default: each run's own)"))
    g.add_argument("--hw", action="append", metavar="FIELD=VALUE", default=[],
                   help="change one ManycoreConfig field, nested ones dotted: "
                        "systolic_cores=4, replication=1 (or none: as many copies as fit), "
                        "tile.adc_bits=8, systolic.rows=16, links.hops=2 (repeatable)")


def _hw_changes(items) -> dict:
    """``FIELD=VALUE`` pairs into typed changes (:func:`sw.experiments.sweep.parse_value`: ints, floats,
    none, true/false; anything else stays a string, e.g. ``tile.device=wan2022``, and the
    configuration validates it)."""
    from sw.experiments.sweep import parse_value
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--hw {item!r}: expected FIELD=VALUE")
        out[name.strip()] = parse_value(value)
    return out


def _manycore(args):
    """The ManycoreConfig of --manycore and --hw (None when neither is given and the
    command has no default)."""
    from hw.manycore import preset
    if args.manycore is None:
        if args.hw:
            raise ValueError("--hw needs --manycore (the preset it changes)")
        return None
    return preset(args.manycore, **_hw_changes(args.hw))


def cmd_sensitivity(args) -> int:
    from sw.cost.report import sensitivity
    path = sensitivity(args.runs, args.out, gpu=args.gpu, tech=_tech(args), dtype=args.dtype,
                       gpu_specs=args.gpu_specs, hw=_manycore(args))
    print(path.read_text())
    print(f"wrote {path} (+ sensitivity.json)")
    return 0


def _add_engine_args(p: argparse.ArgumentParser, runs: str = "runs") -> None:
    p.add_argument("--jobs", type=int, default=2,
                   help=f"{runs} in parallel: CPUs of the embedded Ray (default %(default)s)")
    p.add_argument("--engine", choices=["ray", "serial"], default="ray",
                   help="ray (default: embedded local Ray, or --address) or serial (debugging)")
    p.add_argument("--address", default=None, help="join this Ray cluster (auto, or "
                   "ray://HEAD:10001) instead of starting a local one")


def _add_recipe_args(p: argparse.ArgumentParser, schedule: str | None = None) -> None:
    """Training-recipe flags (TrainConfig fields); unset ones come from the preset's recipe
    (``sw.train.trainer.RECIPES``); ``schedule``: a command's own default schedule."""
    from sw.train.trainer import SCHEDULES
    g = p.add_argument_group("recipe (default: the preset's, sw.train.trainer.RECIPES)")
    g.add_argument("--lr", type=float, default=None, help="peak learning rate")
    g.add_argument("--schedule", choices=SCHEDULES, default=schedule,
                   help="step: x lr_gamma every lr_step_epochs epochs, full phase only (tiny's); "
                        "cosine: warm-up then cosine decay over the whole budget, both phases"
                        + (f" (default here: {schedule})" if schedule else ""))
    g.add_argument("--warmup", type=int, default=None, help="cosine: warm-up iterations")
    g.add_argument("--clip", type=float, default=None,
                   help="clip every step's gradient norm to this (0: no clipping)")


def _model_overrides(args) -> dict:
    """The model flags of the command line, as ModelConfig fields over the preset."""
    return {"attn_bias": True} if args.attn_bias else {}


def _add_flow_arg(p: argparse.ArgumentParser, default: float) -> None:
    p.add_argument("--flow-kmh", type=float, default=default, metavar="KMH",
                   help="weather app: the mean flow (km/h) that carries its synoptic anomalies "
                        "across the stations (DataConfig.flow_kmh; 0: they stay in place; "
                        "default %(default)s)")


def _data_overrides(args) -> dict:
    """The data flags of the command line, as DataConfig fields, checked by DataConfig
    before anything is trained or written."""
    from sw.data import DataConfig
    DataConfig(app="weather", flow_kmh=args.flow_kmh)
    return {"flow_kmh": args.flow_kmh}


def _add_model_args(p: argparse.ArgumentParser, attn_bias: bool = False) -> None:
    p.add_argument("--attn-bias", action=argparse.BooleanOptionalAction, default=attn_bias,
                   help="a learned attention bias per head and station pair in every layer "
                        "(ModelConfig.attn_bias; README, Model; default %(default)s)")


def _recipe(args) -> dict:
    """The recipe flags given on the command line, as TrainConfig fields."""
    given = {k: v for k, v in (("lr", args.lr), ("schedule", args.schedule),
                               ("warmup", args.warmup), ("clip", args.clip)) if v is not None}
    if given.get("clip") == 0:
        given["clip"] = None
    return given


def _add_cost_args(p: argparse.ArgumentParser) -> None:
    from sw.cost.report import DEFAULT_GPU
    p.add_argument("--gpu", default=DEFAULT_GPU, help="GPU of the roofline (sw/cost/gpus.json; "
                   "default %(default)s)")
    p.add_argument("--gpu-specs", type=Path, default=None, help="another GPU spec file")
    p.add_argument("--dtype", default="fp32", help="GPU peak to use (default fp32)")
    p.add_argument("--tech", type=Path, default=None,
                   help="JSON {constant: value} overriding technology constants (sw/cost/estimate.py)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override one technology constant (repeatable)")


def _command_verilog(sub) -> None:
    """``hpt verilog``."""
    p = sub.add_parser("verilog", help="generate Verilog and a JSON description")
    blocks = p.add_subparsers(dest="block", required=True)
    for name, what, add_args, func in (
            ("systolic", "the systolic-array core", _add_systolic_args, cmd_verilog),
            ("chip", "the accelerator: one systolic core + K ReRAM tiles", _add_chip_args,
             cmd_verilog_chip),
            ("reram-tile", "a ReRAM tile (crossbar, DAC/ADC, controller)", _add_tile_args,
             cmd_verilog)):
        q = blocks.add_parser(name, help=what)
        add_args(q)
        q.add_argument("--out", type=Path, default=Path("build/verilog"), help="output directory")
        q.add_argument("--lint", action="store_true", help="also run verilator --lint-only -Wall")
        q.set_defaults(func=func)


def _command_sim(sub) -> None:
    """``hpt sim``."""
    p = sub.add_parser("sim", help="run a block's cocotb testbench under Verilator")
    blocks = p.add_subparsers(dest="block", required=True)
    q = blocks.add_parser("systolic", help="the systolic-array core")
    _add_systolic_args(q)
    q.add_argument("--test", action="append", help="run only this cocotb test (repeatable)")
    q.add_argument("--cocotb-seed", type=int, default=1, help="cocotb random seed")
    q.set_defaults(func=cmd_sim)
    q = blocks.add_parser("reram-tile", help="a ReRAM tile")
    _add_tile_args(q)
    q.add_argument("--test", action="append", help="run only this cocotb test (repeatable)")
    q.add_argument("--cocotb-seed", type=int, default=1, help="cocotb random seed")
    q.set_defaults(func=cmd_sim)


def _command_train(sub) -> None:
    """``hpt train``."""
    p = sub.add_parser("train", help="train the spatial-attention transformer (HpT recipe)")
    p.add_argument("--app", choices=["swe", "weather", "wind", "epidemic"], default=None)
    p.add_argument("--data", type=Path, default=None, help="CSV/text matrix or NPZ (X, y)")
    p.add_argument("--policy", choices=["paper", "intrinsic-dim", "early", "headroom", "branch",
                                         "full", "lora"],
                   default=None,
                   help="switch policy (default paper)")
    p.add_argument("--switch-at", type=int, default=None, metavar="STEP",
                   help="control: switch after exactly STEP iterations (policy switch-at, "
                        "LoRA rank 8 everywhere), instead of --policy")
    p.add_argument("--backend", choices=["torch", "functional", "rtl"], default="torch",
                   help="what runs the low-parameter phase (rtl: the Verilated chip)")
    p.add_argument("--preset", choices=["tiny", "paper"], default="tiny")
    _add_model_args(p)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=32, help="time steps per minibatch")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA when present), "
                   "cpu, cuda; on CUDA the full phase's time and energy are measured")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: what sweeps and quality grids use, so "
                   "the same configuration gives the same numbers; more threads spin and "
                   "slow down on a machine whose cores are busy)")
    p.add_argument("--window", type=int, default=12, help="history steps per station")
    p.add_argument("--horizon", type=int, default=1,
                   help="steps ahead predicted for every station (default 1)")
    p.add_argument("--steps", type=int, default=None, help="time steps of a built-in app")
    p.add_argument("--stations", type=int, default=None, help="stations of a built-in app")
    _add_flow_arg(p, 0.0)
    p.add_argument("--k", type=int, default=20, help="iterations between switch checks")
    p.add_argument("--mapping", choices=["hpt", "qv"], default="hpt",
                   help="which unit runs which op after the switch: hpt (every frozen linear "
                        "in ReRAM, no GPU; default) or qv (only the LoRA targets' frozen "
                        "products offloaded, the rest on the GPU)")
    p.add_argument("--lora-targets", default="q,v",
                   help="encoder linears that get LoRA adapters, of q,k,v,o,ff1,ff2 "
                        "(default q,v, as the paper)")
    p.add_argument("--ranks", choices=["layer", "module", "fixed"], default="layer",
                   help="intrinsic-dim, early, headroom, branch: LoRA rank per layer from its Q/V "
                        "update trajectory (default), per adapted module from its own, or fixed "
                        "r=8 (the measurement only times the switch)")
    _add_recipe_args(p)
    _add_manycore_args(p, "atleus")
    g = p.add_argument_group("co-simulation (rtl backend)")
    g.add_argument("--rtl-sample", type=float, default=1.0,
                   help="share of hardware ops run on the RTL, the rest functional (default 1)")
    g.add_argument("--no-check", action="store_true",
                   help="do not compare RTL ops with the functional models")
    g.add_argument("--waves", type=Path, default=None, metavar="FILE.fst",
                   help="dump a window of the chip's signals into this FST (GTKWave, Surfer)")
    g.add_argument("--wave-from", type=int, default=0, metavar="CYCLE",
                   help="first cycle of the window, counted like the progress line's RTL "
                        "cycles (default 0: the switch's programming)")
    g.add_argument("--wave-cycles", type=int, default=10000, metavar="N",
                   help="length of the wave window in cycles (default 10000)")

    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)


def _command_report(sub) -> None:
    """``hpt report``."""
    p = sub.add_parser("report", help="time and energy: HpT vs GPU-only training, with plots")
    p.add_argument("runs", nargs="+", type=Path, help="finished run directories (hpt train)")
    p.add_argument("--out", type=Path, default=Path("build/report"), help="report folder")
    _add_cost_args(p)
    _add_manycore_args(p, None)
    p.set_defaults(func=cmd_report)


def _command_sensitivity(sub) -> None:
    """``hpt sensitivity``."""
    p = sub.add_parser("sensitivity", help="whole-run speedup and energy reduction of HpT runs "
                       "as one hardware or cost factor varies at a time")
    p.add_argument("runs", nargs="+", type=Path, help="finished HpT run directories (and the "
                   "full run of the same app, if any)")
    p.add_argument("--out", type=Path, default=Path("build/sensitivity"), help="output folder")
    _add_cost_args(p)
    _add_manycore_args(p, None)
    p.set_defaults(func=cmd_sensitivity)


def _command_compare(sub) -> None:
    """``hpt compare``."""
    p = sub.add_parser("compare", help="train apps x policies (functional), cross-app report")
    p.add_argument("--apps", nargs="+", default=["swe", "weather", "wind", "epidemic"])
    p.add_argument("--policies", nargs="+", default=["full", "paper", "intrinsic-dim"])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--presets", nargs="+", choices=["tiny", "paper"], default=["tiny"],
                   help="model presets (default tiny)")
    p.add_argument("--paper-epochs", type=int, default=2,
                   help="epochs of the paper preset's runs on the CPU (default %(default)s)")
    p.add_argument("--mappings", nargs="+", choices=["hpt", "qv"], default=["hpt", "qv"])
    p.add_argument("--seed", type=int, default=0)
    _add_flow_arg(p, 0.0)
    _add_model_args(p)
    _add_engine_args(p)
    p.add_argument("--out", type=Path, default=Path("build/compare"))
    _add_cost_args(p)
    _add_manycore_args(p, "atleus")
    p.set_defaults(func=cmd_compare)


def _command_demo(sub) -> None:
    """``hpt demo``."""
    p = sub.add_parser("demo", help="a co-simulated training run of the tiny preset (make demo)")
    p.add_argument("--out", type=Path, default=Path("build/demo"), help="run directory")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)


def _command_quality(sub) -> None:
    """``hpt quality``."""
    p = sub.add_parser("quality", help="apps x policies x backends x seeds quality table")
    p.add_argument("--apps", nargs="+", default=["swe", "weather", "wind", "epidemic"])
    p.add_argument("--policies", nargs="+",
                   default=["full", "paper", "intrinsic-dim", "early", "headroom", "branch",
                            "lora"])
    p.add_argument("--backends", nargs="+", default=["torch"], choices=["torch", "functional"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=10)
    _add_engine_args(p)
    p.add_argument("--horizon", type=int, default=1,
                   help="steps ahead predicted for every station (default 1)")
    p.add_argument("--steps", type=int, default=6000,
                   help="time steps of every app (default %(default)s: 4x hpt train's, where "
                        "full training beats LoRA on a frozen random base; README)")
    p.add_argument("--preset", choices=["tiny", "paper"], default="tiny",
                   help="model preset, trained with its recipe (default tiny)")
    # the protocol of the README's quality table: weather's anomalies move, the model has
    # the attention bias (README, Quality)
    _add_flow_arg(p, 40.0)
    _add_model_args(p, attn_bias=True)
    _add_recipe_args(p, schedule="cosine")
    p.add_argument("--ranks", nargs="+", choices=["layer", "module", "fixed"],
                   default=["layer"], help="rank modes of the measuring policies "
                   "(intrinsic-dim, early, headroom, branch), each a row: per layer "
                   "(default), per module, fixed r=8")
    p.add_argument("--switch-fractions", nargs="*", type=float, default=[],
                   metavar="F", help="also run the switch-at control with these shares of the "
                   "iterations after the switch (e.g. 0.95 0.9 0.85 0.75 0.5): the "
                   "switch_curve.png plot")
    p.add_argument("--out", type=Path, default=Path("build/quality"))
    p.set_defaults(func=cmd_quality)


def _command_sweep(sub) -> None:
    """``hpt sweep``."""
    p = sub.add_parser("sweep", help="design-space sweep on Ray: training runs or hardware "
                       "points re-costing finished runs; Pareto front, sensitivity, CSV")
    p.add_argument("spec", type=Path, nargs="?", default=None,
                   help="a TOML spec (sw/experiments/sweep.py describes it); --axis/--fixed/--cost add to it")
    p.add_argument("--cost", action="append", type=Path, metavar="RUN_DIR",
                   help="a cost sweep over this finished run (repeatable)")
    p.add_argument("--axis", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="an axis: a run setting (app, policy, seed, data.steps ...), a "
                   "ManycoreConfig field (tile.adc_bits, systolic.rows, systolic_cores ...), "
                   "tech.CONSTANT, gpu or dtype (repeatable)")
    p.add_argument("--fixed", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting every point shares (repeatable)")
    p.add_argument("--name", default=None, help="the sweep's name (default: the spec file's, "
                   "else cost-/train- and a hash of the command line)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default build/sweeps/NAME)")
    p.add_argument("--engine", choices=["ray", "serial"], default="ray",
                   help="ray (default: embedded local Ray, or --address) or serial (debugging)")
    p.add_argument("--address", default=None, help="join this Ray cluster (auto, or "
                   "ray://HEAD:10001) instead of starting a local one")
    p.add_argument("--cpus", type=int, default=None,
                   help="CPUs of the embedded Ray (default: this machine's)")
    p.add_argument("--retries", type=int, default=None,
                   help="re-runs of a failed point before it is reported (default 2)")
    p.add_argument("--vectors", type=int, default=None,
                   help="cost sweeps: input vectors of the MVM-error quality proxy (default 16)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sweep)


def _command_realism(sub) -> None:
    """``hpt realism``."""
    p = sub.add_parser("realism", help="train on realistic ReRAM: ideal vs default vs a "
                       "fitted device model, unaware vs in the loop, and drift (table + JSON)")
    p.add_argument("--apps", nargs="+", default=["swe", "weather", "wind", "epidemic"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--fraction", type=float, default=0.9,
                   help="share of the iterations after the forced switch (default 0.9)")
    p.add_argument("--fitted", default="wan2022", help="the fitted (Gaussian) device model")
    p.add_argument("--ages", nargs="*", type=float, default=[86400.0, 172800.0],
                   metavar="S", help="seconds after programming to evaluate the in-the-loop "
                   "model at (retention and drift)")
    _add_engine_args(p, "runs and deployments")
    p.add_argument("--out", type=Path, default=Path("build/realism"))
    p.set_defaults(func=cmd_realism)


def _command_fidelity(sub) -> None:
    """``hpt fidelity``."""
    p = sub.add_parser("fidelity", help="ReRAM MVM error: device models x encodings x ADC "
                       "bits x ADC calibration, and drift over time (plots + JSON)")
    _add_tile_args(p, "", "base tile's ")
    from hw.reram import ADC_CALIBRATIONS, DEVICES, ENCODINGS
    p.add_argument("--devices", nargs="+", choices=list(DEVICES),
                   default=["ideal", "uniform", "wan2022"], help="device models to sweep")
    p.add_argument("--encodings", nargs="+", choices=list(ENCODINGS), default=list(ENCODINGS))
    p.add_argument("--calibrations", nargs="+", choices=list(ADC_CALIBRATIONS),
                   default=list(ADC_CALIBRATIONS), help="ADC full-scale choices to sweep")
    p.add_argument("--sweep-adc-bits", nargs="+", type=int, default=list(range(4, 13)),
                   metavar="B", help="ADC resolutions to sweep (default 4..12)")
    p.add_argument("--sweep-cell-bits", nargs="+", type=int, default=[1, 2, 4],
                   metavar="B", help="cell widths to sweep (default 1 2 4)")
    p.add_argument("--drift-devices", nargs="*", choices=list(DEVICES),
                   default=["wan2022", "wan2022-drift"],
                   help="device models whose error against time is plotted (none: skip)")
    p.add_argument("--times", nargs="+", type=float, metavar="S",
                   default=[1.0, 60.0, 3600.0, 86400.0, 172800.0, 2.592e6, 3.15e7],
                   help="seconds after programming for the drift plot")
    p.add_argument("--vectors", type=int, default=64, help="input vectors per point")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the Gaussian W and x")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--out", type=Path, default=Path("build/fidelity"))
    p.set_defaults(func=cmd_fidelity)


def _command_bench(sub) -> None:
    """``hpt bench``."""
    p = sub.add_parser("bench", help="benchmarks; results merged into build/bench.json")
    p.add_argument("--out", type=Path, default=None, help="JSON file (default build/bench.json)")
    p.add_argument("--repeats", type=int, default=3, help="best of N runs (default %(default)s)")
    p.add_argument("--only", choices=["systolic", "utilisation", "reram-tile", "chip", "host",
                                      "sweep"],
                   default=None, help="run one block's benchmarks only (utilisation: the "
                   "systolic core's PE utilisation on issue 13's shapes; also part of systolic)")
    p.set_defaults(func=cmd_bench)


#: Every subcommand, in ``hpt --help`` order.
COMMANDS = (
    _command_verilog,
    _command_sim,
    _command_train,
    _command_report,
    _command_sensitivity,
    _command_compare,
    _command_demo,
    _command_quality,
    _command_sweep,
    _command_realism,
    _command_fidelity,
    _command_bench,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None) -> int:
    from hw.lint import LintError
    from hw.toolchain import ToolchainError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, ToolchainError, LintError,
            RuntimeError) as exc:
        print(f"hpt: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (ValueError, TypeError, FileNotFoundError)) else 1


if __name__ == "__main__":
    sys.exit(main())
