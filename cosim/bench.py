"""``make bench``: native vs co-simulated throughput, written to ``build/bench.json``.

``build/bench.json`` is a JSON list with one object per benchmark; each run replaces
the objects whose ``name`` it produces and keeps the others (later blocks add theirs).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from hw.systolic import SystolicConfig

from .build import BUILD_ROOT
from .native import run_systolic_bench, run_tile_bench
from .sim import build_systolic_sim, build_tile_sim, run_cocotb

__all__ = ["bench_systolic", "bench_systolic_utilisation", "bench_tile", "merge_results",
           "scalesim_os_cycles", "UTILISATION_SHAPES"]


def _host() -> dict:
    return {"machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version()}


def bench_systolic(cfg: SystolicConfig | None = None, shape=(256, 256, 256),
                   native_tiles: int = 4000, repeats: int = 3) -> list[dict]:
    cfg = cfg or SystolicConfig(rows=16, cols=16, in_width=8, k_depth=256)
    native = max((run_systolic_bench(cfg, native_tiles) for _ in range(repeats)),
                 key=lambda r: r["cycles_per_s"])
    sim = build_systolic_sim(cfg)
    cosim = {}
    for label, per_call in (("all_tiles_per_call", 0), ("one_tile_per_call", 1)):
        best = None
        for rep in range(repeats):
            r = _cocotb_json(sim, "cosim.bench_systolic", f"bench-{label}-{rep}",
                             {"HPT_BENCH_SHAPE": ",".join(map(str, shape)),
                              "HPT_BENCH_TILES_PER_CALL": str(per_call)},
                             testcase="matmul_throughput")
            if best is None or r["cycles_per_s"] > best["cycles_per_s"]:
                best = r
        cosim[label] = best
    common = {"config": cfg.to_dict(), "host": _host(), "best_of": repeats}
    results = [{
        "name": "systolic_native_verilator",
        "what": "C++ harness clocks the core directly: LOAD_AB, COMPUTE, READ per tile",
        "cycles_per_s": native["cycles_per_s"], "cycles": native["cycles"],
        "seconds": native["seconds"], "target_cycles_per_s": 1.2e6, **common}]
    for label, r in cosim.items():
        results.append({
            "name": f"systolic_cosim_matmul_{label}",
            "what": f"{'x'.join(map(str, shape))} int matmul, numpy in -> numpy out through "
                    f"cocotb, {r['tiles_per_call']} tile(s) per Python call",
            **r, "native_cycles_per_s": native["cycles_per_s"],
            "ratio": r["cycles_per_s"] / native["cycles_per_s"], "target_ratio": 0.5, **common})
    return results


#: The shapes (m, k, n) of issue 13's comparison with SCALE-Sim, on 8x8 and 16x16 arrays.
UTILISATION_SHAPES = ((16, 16, 16), (64, 64, 64), (256, 256, 256), (32, 64, 8),
                      (1024, 64, 64), (57, 64, 57), (4096, 512, 8), (512, 8, 4096))


def scalesim_os_cycles(cfg: SystolicConfig, m: int, k: int, n: int) -> int:
    """SCALE-Sim 3.0's output-stationary cycles for ``(m x k) @ (k x n)`` on a
    ``rows x cols`` array (M on rows, N on columns): ``tm*tn*(k + rows + cols - 2)``
    (its CALC mode reports this count minus one, the last cycle's index; measured,
    ``shared/TOOLCHAIN.md``). A fold streams k operands and drains the skew, and folds
    do not overlap."""
    tm, tn = -(-m // cfg.rows), -(-n // cfg.cols)
    return tm * tn * (k + cfg.rows + cfg.cols - 2)


def bench_systolic_utilisation(arrays=((8, 8), (16, 16)), shapes=UTILISATION_SHAPES) -> list[dict]:
    """PE utilisation ``m*k*n / (rows*cols*cycles)`` of each shape on each array, from the
    co-simulated RTL's cycles (whole program in one call, checked bit for bit) and from the
    cycle model (``matmul_cycles``), next to SCALE-Sim's count for the same fold."""
    results = []
    for r, c in arrays:
        cfg = SystolicConfig(rows=r, cols=c, in_width=8, k_depth=256)
        measured = _cocotb_json(
            build_systolic_sim(cfg), "cosim.bench_systolic", "utilisation",
            {"HPT_BENCH_SHAPES": ";".join(",".join(map(str, s)) for s in shapes)},
            testcase="utilisation")
        for row in measured:
            m, k, n = row["shape"]
            model, scalesim = cfg.matmul_cycles(m, k, n), scalesim_os_cycles(cfg, m, k, n)
            if row["core_active_cycles"] != model:
                raise RuntimeError(f"{m}x{k}x{n} on {r}x{c}: the RTL took "
                                   f"{row['core_active_cycles']} cycles, the cycle model says {model}")
            util = lambda cyc: m * k * n / (r * c * cyc)            # noqa: E731
            results.append({
                "name": f"systolic_pe_utilisation_{r}x{c}_{m}x{k}x{n}",
                "what": "PE utilisation m*k*n/(rows*cols*cycles) of one tiled product",
                "array": [r, c], "shape": [m, k, n], **row,
                "model_cycles": model, "scalesim_os_cycles": scalesim,
                "utilisation_rtl": util(row["rtl_cycles"]),
                "utilisation_model": util(model),
                "utilisation_scalesim": util(scalesim),
                "cycles_over_scalesim": row["core_active_cycles"] / scalesim,
                "target_cycles_over_scalesim": 1.10, "config": cfg.to_dict(), "host": _host()})
    return results


def _cocotb_json(sim, module: str, name: str, env: dict, testcase: str | None = None):
    """Run one cocotb benchmark test (``testcase`` of ``module``, or its only test); return
    the JSON it wrote to ``HPT_BENCH_OUT``."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    try:
        tests, failed, log = run_cocotb(sim, module, name=name, testcase=testcase,
                                        extra_env={**env, "HPT_BENCH_OUT": str(out)})
        if failed or tests != 1:
            raise RuntimeError(f"co-simulated benchmark {module} failed; log: {log}")
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def bench_tile(cfg=None, mvms: int = 200, batch: int = 20, repeats: int = 3) -> list[dict]:
    """Native vs co-simulated MVMs per second of a 128x128 tile (program once, many MVMs)."""
    from hw.reram import TileConfig
    cfg = cfg or TileConfig()
    native = max((run_tile_bench(cfg, mvms, batch) for _ in range(repeats)),
                 key=lambda r: r["mvm_per_s"])
    sim = build_tile_sim(cfg)
    cosim = max((_cocotb_json(sim, "cosim.bench_tile", f"bench-{rep}",
                              {"HPT_BENCH_MVMS": f"{mvms},{batch}"}) for rep in range(repeats)),
                key=lambda r: r["mvm_per_s"])
    common = {"config": cfg.to_dict(), "host": _host(), "best_of": repeats}
    return [
        {"name": "reram_tile_native_verilator", "what": "C++ harness: program once, "
         f"{mvms} MVMs in commands of {batch}", **native, **common},
        {"name": "reram_tile_cosim_mvm", "what": f"{mvms} MVMs from numpy through cocotb "
         f"(commands of {batch} vectors, one Python call)", **cosim,
         "native_mvm_per_s": native["mvm_per_s"], "ratio": cosim["mvm_per_s"] / native["mvm_per_s"],
         "target_ratio": 0.5, **common},
    ]


def op_mix(cfg, vectors: int = 16, seed: int = 0):
    """One low-parameter step's worth of work for every unit of the chip ``cfg``: each tile
    programs its weights and runs an MVM and an MVM_T of ``vectors`` vectors; the systolic
    core runs LoRA-shaped products and a batch of attention products. Returns
    ``(systolic steps, products [(A, B, first step, step count)], tile ops, tile data)``."""
    from hw.reram import TileOp
    from sw.golden.systolic import build_program

    rng = np.random.default_rng(seed)
    t, s = cfg.tile, cfg.systolic
    w = lambda bits, shape: rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), shape)  # noqa: E731
    tile_ops, tile_data = {}, {}
    for k in range(cfg.blocks):
        W, X, Y = w(t.weight_bits, (t.rows, t.cols)), w(t.input_bits, (vectors, t.rows)), \
            w(t.input_bits, (vectors, t.cols))
        tile_ops[k] = [(TileOp.PROGRAM, 0, W), (TileOp.MVM, 0, X), (TileOp.MVM_T, 0, Y)]
        tile_data[k] = (W, X, Y)
    d, r = t.rows, 8
    shapes = [((vectors, d), (d, r)), ((vectors, r), (r, d))] * 2 + [((4, 16), (16, 4))] * 16
    steps, products = [], []
    for sa, sb in shapes:
        A, B = w(s.in_width, sa), w(s.in_width, sb)
        prog = build_program(s, A, B).steps
        products.append((A, B, len(steps), len(prog)))
        steps += prog
    return steps, products, tile_ops, tile_data


def bench_chip(cfg=None, repeats: int = 3) -> list[dict]:
    """Native vs co-simulated cycles per second of the demo's chip on :func:`op_mix`:
    the same Verilated model, harness and staged program, driven by a C++ main or by
    cocotb from numpy (packing and unpacking included)."""
    from hw.manycore import preset

    from .driver import ArrayBuffer
    from .native import run_harness_bench
    from .rtl_device import ChipDriver
    from .sim import build_chip_sim

    cfg = cfg or preset("demo")
    sim = build_chip_sim(cfg)
    cosim = _cocotb_json(sim, "cosim.bench_chip", "bench", {"HPT_BENCH_REPEATS": str(repeats)})
    serial = _cocotb_json(sim, "cosim.bench_chip", "bench-serial",
                          {"HPT_BENCH_REPEATS": str(repeats), "HPT_BENCH_SCHEDULE": "serial"})
    steps, _, tile_ops, _ = op_mix(cfg)
    stager = ChipDriver(None, cfg, ArrayBuffer())
    stager.hw.stage_channels(stager.transactions({0: steps}, tile_ops))
    image = BUILD_ROOT / "native" / f"{cfg.name}_op_mix.bin"
    image.parent.mkdir(parents=True, exist_ok=True)
    stager.hw.buf.words[:stager.hw.staged_words].tofile(image)
    native = run_harness_bench(cfg, image, repeats)
    if native["cycles"] != cosim["rtl_cycles"]:
        raise RuntimeError(f"native run took {native['cycles']} cycles, co-simulated "
                           f"{cosim['rtl_cycles']}: not the same program")
    common = {"config": cfg.to_dict(), "host": _host(), "best_of": repeats,
              "op_mix": "every tile: PROGRAM + MVM + MVM_T of 16 vectors; systolic: LoRA-"
                        "shaped products (16x64 @ 64x8, 16x8 @ 8x64, twice) and 16 attention "
                        "products 4x16 @ 16x4; all units started together"}
    return [
        {"name": "chip_native_verilator", "what": "the chip's harness with a C++ main "
         "(cosim/native/harness_bench.cpp), staged program loaded from a file", **native,
         **common},
        {"name": "chip_cosim", "what": "the same program from numpy through cocotb "
         "(transactions packed, outputs unpacked), one Python call", **cosim,
         "native_cycles_per_s": native["cycles_per_s"],
         "ratio": cosim["cycles_per_s"] / native["cycles_per_s"], "target_ratio": 0.5, **common},
        {"name": "chip_cosim_serial", "what": "the same ops as a training step issues them: "
         "the systolic products, then each tile's ops alone (one cocotb call per unit), the "
         "other tiles idle with their clocks gated", **serial,
         "concurrent_cycles_per_s": cosim["cycles_per_s"], **common},
    ]


def merge_results(results: list[dict], path: Path | None = None) -> Path:
    path = Path(path or BUILD_ROOT / "bench.json")
    old = json.loads(path.read_text()) if path.is_file() else []
    names = {r["name"] for r in results}
    merged = [r for r in old if r.get("name") not in names] + results
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, path)
    return path
