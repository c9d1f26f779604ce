"""cocotb benchmark of the chip: one mixed program on every unit at once.

Started by :func:`cosim.bench.bench_chip`. The op mix (:func:`cosim.bench.op_mix`) is what a
low-parameter training step gives each unit: the tiles program their frozen weights and
run MVMs and MVM_Ts, the systolic core runs LoRA-shaped products and a batch of attention
products. The same staged program also runs natively (``cosim/native/harness_bench.cpp``).
Outputs are checked against the golden models outside the timed region.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np

from hw.manycore import ManycoreConfig
from sw.golden.reram import ReramModel
from sw.golden.systolic import matmul as golden_matmul

from .bench import op_mix
from .rtl_device import ChipDriver, ChipRun
from .systolic_driver import place_results


@cocotb.test()
async def chip_throughput(dut):
    cfg = ManycoreConfig.from_dict(json.loads(os.environ["HPT_CONFIG"]))
    repeats = int(os.environ.get("HPT_BENCH_REPEATS", "3"))
    steps, products, tile_ops, tile_data = op_mix(cfg)
    drv = ChipDriver(dut, cfg)
    await drv.reset()
    serial = os.environ.get("HPT_BENCH_SCHEDULE", "concurrent") == "serial"
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if serial:
            # as a training step issues them: the systolic products, then each tile's
            # ops alone (one harness run each), the other tiles idle
            parts = [await drv.run({0: steps}, {})]
            parts += [await drv.run((), {k: ops}) for k, ops in tile_ops.items()]
            res = ChipRun(parts[0].core_outputs,
                          {k: p.tile_results[k] for k, p in zip(tile_ops, parts[1:])},
                          sum(p.cycles for p in parts),
                          [sum(col) for col in zip(*(p.active for p in parts))],
                          sum(p.overlap for p in parts), cfg.systolic_cores)
        else:
            res = await drv.run({0: steps}, tile_ops)
        runs.append((time.perf_counter() - t0, res))
    s = cfg.systolic
    models = {k: ReramModel(cfg.physical_tile(k)) for k in tile_data}
    for _, res in runs:                         # every run checked, in order (tile state)
        for A, B, at, n in products:
            out = np.zeros((A.shape[0], B.shape[1]), np.int64)
            place_results(s, steps[at:at + n], res.core_outputs[0][at:at + n], out)
            np.testing.assert_array_equal(out, golden_matmul(s, A, B))
        for k, (W, X, Y) in tile_data.items():
            models[k].program(0, W)
            np.testing.assert_array_equal(res.tile_results[k][1], models[k].mvm(X))
            np.testing.assert_array_equal(res.tile_results[k][2], models[k].mvm(Y, transpose=True))
    wall, res = min(runs, key=lambda r: r[0])
    with open(os.environ["HPT_BENCH_OUT"], "w") as f:
        json.dump({"rtl_cycles": res.cycles, "seconds": wall, "cycles_per_s": res.cycles / wall,
                   "overlap_cycles": res.overlap, "unit_active": res.active,
                   "bit_exact": True}, f)
