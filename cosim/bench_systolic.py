"""cocotb benchmark: a large matmul from numpy arrays to numpy results through the RTL.

Started by :func:`cosim.bench.bench_systolic`; parameters and the output path come in
environment variables. The result is checked bit for bit against the golden model
(outside the timed region) before any figure is written.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np

from hw.systolic import SystolicConfig
from sw.golden.systolic import Program, build_program, matmul

from .systolic_driver import SystolicDriver

CFG = SystolicConfig.from_dict(json.loads(os.environ["HPT_CONFIG"]))


@cocotb.test()
async def matmul_throughput(dut):
    m, k, n = (int(x) for x in os.environ["HPT_BENCH_SHAPE"].split(","))
    tiles_per_call = int(os.environ.get("HPT_BENCH_TILES_PER_CALL", "0")) or None
    rng = np.random.default_rng(0)
    A = rng.integers(CFG.in_min, CFG.in_max, (m, k), endpoint=True)
    B = rng.integers(CFG.in_min, CFG.in_max, (k, n), endpoint=True)
    drv = SystolicDriver(dut, CFG)
    await drv.matmul(A[:CFG.rows, :CFG.k_depth], B[:CFG.k_depth, :CFG.cols])   # warm-up
    t0 = time.perf_counter()
    program = build_program(CFG, A, B)
    got, cycles, active = await drv.run_program(program, tiles_per_call=tiles_per_call)
    wall = time.perf_counter() - t0
    np.testing.assert_array_equal(got, matmul(CFG, A, B))
    # each harness run starts on an idle core: the model of a split program is per run
    runs = SystolicDriver.calls(program, tiles_per_call)
    assert active == sum(Program(CFG, steps, program.shape).cycles for steps in runs)
    assert len(runs) > 1 or active == CFG.matmul_cycles(m, k, n)
    n_tiles = sum(1 for s in program.steps if s.out)
    per_call = tiles_per_call or n_tiles
    result = {
        "shape": [m, k, n], "tiles": n_tiles, "tiles_per_call": per_call,
        "calls": -(-n_tiles // per_call), "rtl_cycles": cycles, "core_active_cycles": active,
        "seconds": wall, "cycles_per_s": cycles / wall, "mac_per_s": m * k * n / wall,
        "bit_exact": True,
    }
    with open(os.environ["HPT_BENCH_OUT"], "w") as f:
        json.dump(result, f)


@cocotb.test()
async def utilisation(dut):
    """Every shape of ``HPT_BENCH_SHAPES`` (``m,k,n;...``) as one program in one call:
    the RTL's cycles and the core's active cycles, checked bit for bit."""
    rng = np.random.default_rng(1)
    drv = SystolicDriver(dut, CFG)
    rows = []
    for shape in os.environ["HPT_BENCH_SHAPES"].split(";"):
        m, k, n = (int(x) for x in shape.split(","))
        A = rng.integers(CFG.in_min, CFG.in_max, (m, k), endpoint=True)
        B = rng.integers(CFG.in_min, CFG.in_max, (k, n), endpoint=True)
        got, cycles, active = await drv.run_program(build_program(CFG, A, B))
        np.testing.assert_array_equal(got, matmul(CFG, A, B))
        rows.append({"shape": [m, k, n], "rtl_cycles": cycles, "core_active_cycles": active})
    with open(os.environ["HPT_BENCH_OUT"], "w") as f:
        json.dump(rows, f)
