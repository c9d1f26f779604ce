"""Build and run cocotb co-simulations under the project's own Verilator.

One build directory per configuration (``build/sim/<cfg.name>``), reused while its
stamp matches; see :mod:`cosim.build`.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from hw.systolic import SystolicConfig, SystolicCore
from hw.toolchain import ToolchainError, verilator_env
from hw.verilog import generate

from .build import BUILD_ROOT, FAST_FLAGS, cached_build, digest
from .harness import render_harness
from .objcache import make_flag
from .systolic_harness import systolic_harness_spec

__all__ = ["SimBuild", "toolchain_env", "verilator_runner", "build_block_sim",
           "build_sources_sim", "build_systolic_sim", "build_tile_sim", "build_chip_sim",
           "chip_harness_spec", "run_cocotb", "wave_plusargs"]

HERE = Path(__file__).resolve().parent

#: Keep signals private (cocotb defaults to --public-flat-rw, which slows Verilator) while
#: the top's ports stay visible; the clock lives inside the harness (--timing).
SIM_FLAGS = [*FAST_FLAGS, "--timing", "--no-public-flat-rw", "--public-depth", "1",
             "-Wno-fatal", "-Wno-WIDTH", "-Wno-TIMESCALEMOD", "-LDFLAGS", "-rdynamic"]


class SimBuild:
    def __init__(self, build_dir: Path, top: str, config: dict, waves: bool):
        self.build_dir, self.top, self.config, self.waves = build_dir, top, config, waves


#: Compiled objects shared between builds (:mod:`cosim.objcache`, verilated.mk's OBJCACHE).
OBJCACHE_DIR = BUILD_ROOT / "sim" / ".objcache"


@contextlib.contextmanager
def toolchain_env():
    """The project's Verilator (hw/toolchain.py) on PATH and VERILATOR_ROOT while inside,
    and make's OBJCACHE set to :mod:`cosim.objcache`; the environment is restored
    afterwards."""
    saved = dict(os.environ)
    env = verilator_env()
    flag = make_flag(OBJCACHE_DIR)
    if flag and "OBJCACHE=" not in env.get("MAKEFLAGS", ""):
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} {flag}".strip()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def verilator_runner():
    """cocotb's Verilator runner (cocotb_tools.runner's public get_runner)."""
    from cocotb_tools.runner import get_runner
    return get_runner("verilator")


def build_block_sim(component, name: str, config: dict, spec, *, waves: bool = False) -> SimBuild:
    """Generate a block's Verilog and its harness (``spec``), and build (or reuse) the model."""
    v_path, _ = generate(component, name, BUILD_ROOT / "verilog", config=config)
    return build_sources_sim([v_path], name, config, spec, waves=waves)


def build_sources_sim(sources: list[Path], name: str, config: dict, spec, *,
                      waves: bool = False, extra_flags: tuple = ()) -> SimBuild:
    """Build (or reuse) the model of Verilog ``sources`` under the harness of ``spec``."""
    src_dir = BUILD_ROOT / "verilog"
    src_dir.mkdir(parents=True, exist_ok=True)
    sv_path = src_dir / f"{spec.top}.sv"
    text = render_harness(spec)
    if not sv_path.is_file() or sv_path.read_text() != text:
        sv_path.write_text(text)
    shim = HERE / "shim.cpp"
    flags = SIM_FLAGS + list(extra_flags)
    extra_src = []
    if waves:               # FST with a bounded window: see the harness's HPT_WAVES block
        from hw.toolchain import fst_flags
        flags += [*fst_flags(BUILD_ROOT), "--trace-structs", "-DHPT_WAVES"]
        extra_src = [HERE / "waves.cpp"]
    if "--hierarchical" in flags:
        # --public-depth would make every signal of a hierarchical block public (its own
        # top level): the harness marks its ports public_flat_rw instead
        i = flags.index("--public-depth")
        flags = flags[:i] + flags[i + 2:]
    build_dir = BUILD_ROOT / "sim" / (name + ("_waves" if waves else ""))
    stamp = digest([*sources, sv_path, shim, *extra_src], {"flags": flags, "top": spec.top})

    def build(d: Path):
        from cocotb_tools.runner import Verilog
        runner = verilator_runner()
        log = d / "build.log"
        with toolchain_env():
            try:
                # waves=True only sets VM_TRACE for make (the format is --trace-fst above)
                # a Verilator control file (.vlt) goes to verilator as it is, like the C++
                runner.build(sources=[*(Path(v).resolve() if Path(v).suffix in (".v", ".sv")
                                        else Verilog(str(Path(v).resolve())) for v in sources),
                                      sv_path.resolve(),
                                      *(Verilog(str(f)) for f in (shim, *extra_src))],
                             hdl_toplevel=spec.top, build_dir=d, build_args=flags,
                             timescale=("1ns", "1ps"), waves=waves, log_file=log, always=True)
            except (Exception, SystemExit) as exc:
                raise ToolchainError(f"Verilator build of {spec.top} failed ({exc}); "
                                     f"full log: {log}") from None

    cached_build(build_dir, stamp, build)
    return SimBuild(build_dir, spec.top, config, waves)


def build_systolic_sim(cfg: SystolicConfig, *, waves: bool = False) -> SimBuild:
    return build_block_sim(SystolicCore(cfg), cfg.name, cfg.to_dict(),
                           systolic_harness_spec(cfg), waves=waves)


def build_tile_sim(cfg, *, waves: bool = False) -> SimBuild:
    from hw.reram import ReramTile
    from .tile_harness import tile_harness_spec
    return build_block_sim(ReramTile(cfg), cfg.name, cfg.to_dict(), tile_harness_spec(cfg),
                           waves=waves)


def run_cocotb(sim: SimBuild, test_module: str, *, testcase=None, extra_env=None,
               name: str = "run", seed: int = 1, waves=None) -> tuple[int, int, Path]:
    """Run cocotb tests from ``test_module`` on a built model.

    ``waves = (file, from_cycle, cycles)`` dumps that window into an FST ``file`` (the
    model must be built with ``waves=True``). Returns ``(tests, failures, log)``. A
    simulator that dies raises ToolchainError naming its log.
    """
    plusargs = wave_plusargs(sim, waves) if waves is not None else []
    from cocotb_tools.check_results import get_results
    runner = verilator_runner()
    test_dir = (sim.build_dir / name).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    log = test_dir / "sim.log"
    env = {"HPT_CONFIG": json.dumps(sim.config), **(extra_env or {})}
    xml = test_dir / "results.xml"
    with toolchain_env():
        try:
            runner.test(test_module=test_module, hdl_toplevel=sim.top, hdl_toplevel_lang="verilog",
                        build_dir=sim.build_dir,
                        test_dir=test_dir, testcase=testcase, extra_env=env, seed=seed,
                        results_xml=str(xml.resolve()), log_file=log, plusargs=plusargs)
        except SystemExit:
            pass            # failing tests exit here under pytest; the results file tells
    try:
        tests, failed = get_results(xml)
    except RuntimeError:
        raise ToolchainError(f"simulation of {sim.top} died before writing results; "
                             f"full log: {log}") from None
    return tests, failed, log


def wave_plusargs(sim: SimBuild, waves) -> list[str]:
    """Simulator arguments that dump the window ``waves = (file, from_cycle, cycles)``."""
    if not sim.waves:
        raise ValueError("waves: this model was built without waves (build it with waves=True)")
    file, start, n = waves
    if int(start) < 0 or int(n) < 1:
        raise ValueError(f"waves: the window needs --wave-from >= 0 and --wave-cycles >= 1, "
                         f"got {start} and {n}")
    Path(file).parent.mkdir(parents=True, exist_ok=True)
    return [f"+hpt_wave_file={Path(file).resolve()}", f"+hpt_wave_from={int(start)}",
            f"+hpt_wave_cycles={int(n)}"]


def chip_harness_spec(cfg):
    """The chip's harness: channel ``c`` is systolic core ``c`` (``sa<c>``), channel
    ``systolic_cores + k`` tile ``k``; ``overlap`` counts cycles with a core and a tile
    both active."""
    from .harness import MultiSpec
    from .tile_harness import tile_harness_spec
    sa = systolic_harness_spec(cfg.systolic)
    channels = [(f"sa{c}", sa) for c in range(cfg.systolic_cores)]
    channels += [(f"t{k}", tile_harness_spec(cfg.physical_tile(k))) for k in range(cfg.blocks)]
    return MultiSpec(top=f"{cfg.name}_harness", core=cfg.name, channels=tuple(channels),
                     first=cfg.systolic_cores)


def build_chip_sim(cfg, *, waves: bool = False) -> SimBuild:
    """Generate the chip (:func:`hw.chip.chip_sources`: modules and control file) and its
    harness; build or reuse."""
    from hw.chip import chip_sources
    # no module inlining: the K tiles stay instances of one C++ class, compiled once
    return build_sources_sim(chip_sources(cfg, BUILD_ROOT / "verilog"), cfg.name, cfg.to_dict(),
                             chip_harness_spec(cfg), waves=waves, extra_flags=("--hierarchical",))
