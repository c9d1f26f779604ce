"""cocotb benchmark of the ReRAM tile: program once, then many MVMs through the RTL.

Started by :func:`cosim.bench.bench_tile`; the outputs are checked bit for bit against
the golden model outside the timed region before any figure is written.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np

from hw.reram import TileConfig, TileOp
from sw.golden.reram import ReramModel

from .tile_harness import TileDriver

CFG = TileConfig.from_dict(json.loads(os.environ["HPT_CONFIG"]))


@cocotb.test()
async def mvm_throughput(dut):
    mvms, batch = (int(x) for x in os.environ["HPT_BENCH_MVMS"].split(","))
    rng = np.random.default_rng(0)
    W = rng.integers(-(1 << (CFG.weight_bits - 1)), 1 << (CFG.weight_bits - 1), (CFG.rows, CFG.cols))
    X = rng.integers(-(1 << (CFG.input_bits - 1)), 1 << (CFG.input_bits - 1), (mvms, CFG.rows))
    drv = TileDriver(dut, CFG)
    await drv.reset()
    await drv.run([(TileOp.PROGRAM, 0, W)])
    t0 = time.perf_counter()
    res = await drv.run([(TileOp.MVM, 0, X[k:k + batch]) for k in range(0, mvms, batch)])
    got = np.concatenate(res.outputs)
    wall = time.perf_counter() - t0
    model = ReramModel(CFG)
    model.program(0, W)
    np.testing.assert_array_equal(got, model.mvm(X))
    with open(os.environ["HPT_BENCH_OUT"], "w") as f:
        json.dump({"mvms": mvms, "batch": batch, "rtl_cycles": res.cycles, "seconds": wall,
                   "mvm_per_s": mvms / wall, "cycles_per_s": res.cycles / wall,
                   "bit_exact": True}, f)
