"""Native (no Python in the loop) Verilator benchmarks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from hw.systolic import Op, SystolicConfig, SystolicCore, pack_command
from hw.verilog import generate

from ..build import BUILD_ROOT, FAST_FLAGS, cached_build, digest, verilate_exe

HERE = Path(__file__).parent


def build_systolic_bench(cfg: SystolicConfig, tiles: int) -> Path:
    """Build (or reuse) the native C++ benchmark of ``cfg``; return the executable."""
    gen_dir = BUILD_ROOT / "verilog"
    v_path, _ = generate(SystolicCore(cfg), cfg.name, gen_dir, config=cfg.to_dict())
    cpp = HERE / "systolic_bench.cpp"
    k = cfg.k_depth
    defines = [f"BENCH_ROWS={cfg.rows}", f"BENCH_COLS={cfg.cols}", f"BENCH_IN_WIDTH={cfg.in_width}",
               f"BENCH_K={k}", f"BENCH_TILES={tiles}",
               f"BENCH_CMD_LOAD={pack_command(cfg, Op.LOAD_AB, count=k)}ULL",
               f"BENCH_CMD_COMPUTE={pack_command(cfg, Op.COMPUTE, count=k, last=True)}ULL",
               f"BENCH_CMD_READ={pack_command(cfg, Op.READ, count=cfg.rows)}ULL"]
    return _build(cfg.name, v_path, cpp, defines)


def _build(name: str, v_path: Path, cpp: Path, defines: list[str]) -> Path:
    """Verilate ``v_path`` with the C++ harness ``cpp`` (cached per configuration)."""
    build_dir = BUILD_ROOT / "native" / name
    stamp = digest([v_path, cpp, HERE / "bench_ports.h"], {"defines": defines, "flags": FAST_FLAGS})
    cached_build(build_dir, stamp, lambda d: verilate_exe(
        name, [v_path.resolve(), cpp.resolve()], d, "bench", defines=defines,
        cflags=[f"-I{HERE.resolve()}"]))
    return build_dir / "obj" / "bench"


def _run(exe: Path) -> dict:
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_systolic_bench(cfg: SystolicConfig, tiles: int = 2000) -> dict:
    return _run(build_systolic_bench(cfg, tiles))


def build_tile_bench(cfg, mvms: int, batch: int) -> Path:
    from hw.reram import ReramTile, TileOp, pack_tile_command
    v_path, _ = generate(ReramTile(cfg), cfg.name, BUILD_ROOT / "verilog", config=cfg.to_dict())
    cpp = HERE / "tile_bench.cpp"
    defines = [f"BENCH_ROWS={cfg.rows}", f"BENCH_MVMS={mvms}", f"BENCH_BATCH={batch}",
               f"BENCH_CMD_PROGRAM={pack_tile_command(cfg, TileOp.PROGRAM, count=cfg.rows)}ULL",
               f"BENCH_CMD_MVM={pack_tile_command(cfg, TileOp.MVM, count=batch)}ULL"]
    return _build(cfg.name, v_path, cpp, defines)


def run_tile_bench(cfg, mvms: int = 200, batch: int = 20) -> dict:
    return _run(build_tile_bench(cfg, mvms, batch))


def build_harness_bench(cfg) -> Path:
    """Build (or reuse) the chip's harness with a C++ main (``harness_bench.cpp``) in place
    of cocotb: the same Verilated model and harness, no Python."""
    from hw.chip import chip_sources
    from ..harness import render_harness
    from ..sim import chip_harness_spec
    spec = chip_harness_spec(cfg)
    gen_dir = BUILD_ROOT / "verilog"
    sources = chip_sources(cfg, gen_dir)
    sv = gen_dir / f"{spec.top}.sv"
    text = render_harness(spec)
    if not sv.is_file() or sv.read_text() != text:
        sv.write_text(text)
    cpp, shim = HERE / "harness_bench.cpp", HERE.parent / "shim.cpp"
    flags = ["--timing", "--hierarchical", "-Wno-WIDTH", "-Wno-TIMESCALEMOD"]
    build_dir = BUILD_ROOT / "native" / spec.top
    stamp = digest([*sources, sv, cpp, shim], {"flags": flags + FAST_FLAGS})
    cached_build(build_dir, stamp, lambda d: verilate_exe(
        spec.top, [*(p.resolve() for p in sources), sv.resolve(), shim.resolve(), cpp.resolve()],
        d, "bench", flags=flags))
    return build_dir / "obj" / "bench"


def run_harness_bench(cfg, image: Path, repeats: int = 3) -> dict:
    """Run a staged program image (``uint32`` words) on the native harness, best of
    ``repeats`` (each a fresh copy of the image)."""
    exe = build_harness_bench(cfg)
    best = None
    for _ in range(repeats):
        r = json.loads(subprocess.run([str(exe), str(image), "1"], capture_output=True,
                                      text=True, check=True).stdout.strip().splitlines()[-1])
        if best is None or r["cycles_per_s"] > best["cycles_per_s"]:
            best = r
    return best
