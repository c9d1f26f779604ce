"""cocotb testbench of the chip (run through tests/test_chip_cocotb.py).

The RTL device (:class:`cosim.rtl_device.RtlDevice`) is driven from a bridge thread, as
the training loop drives it, and every op is checked against the functional golden
models by :class:`cosim.rtl_device.CheckedDevice`; a second test runs systolic and tile
work in one harness run and checks that the units overlap.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.task import bridge, resume

from hw.manycore import ManycoreConfig
from hw.reram import TileOp
from sw.backends import FunctionalDevice
from sw.golden.reram import ReramModel
from sw.golden.systolic import build_program, matmul as golden_matmul

from .rtl_device import CheckedDevice, ChipDriver, RtlDevice
from .systolic_driver import place_results

CFG = ManycoreConfig.from_dict(json.loads(os.environ["HPT_CONFIG"]))
HW = CFG


def _ints(rng, lo_bits, shape):
    lo, hi = -(1 << (lo_bits - 1)), (1 << (lo_bits - 1)) - 1
    x = rng.integers(lo, hi, shape, endpoint=True)
    x.flat[0], x.flat[-1] = lo, hi                         # extremes
    return x


@cocotb.test()
async def device_ops_match_the_functional_models(dut):
    driver = ChipDriver(dut, CFG)
    await driver.reset()
    t, s = CFG.tile, CFG.systolic

    def work():
        rtl = RtlDevice(driver, call=lambda fn, *a: resume(fn)(*a))
        dev = CheckedDevice(rtl, FunctionalDevice(HW))
        rng = np.random.default_rng(int(os.environ.get("HPT_SEED", "1")))
        # a matrix over two tiles (when the chip has them) and one partly used tile
        big = (t.rows + 3, t.cols) if CFG.blocks >= 3 else (t.rows, t.cols)
        dev.program("big", _ints(rng, t.weight_bits, big))
        dev.program("small", _ints(rng, t.weight_bits, (max(1, t.rows - 2), max(1, t.cols - 1))))
        for key in ("big", "small"):
            rows, cols = rtl.shapes[key]
            for n in (1, 5):
                dev.mvm(key, _ints(rng, t.input_bits, (n, rows)), False)
                dev.mvm(key, _ints(rng, t.input_bits, (n, cols)), True)
        for shape in [((1, 1), (1, 1)), ((3, s.rows + 1), (s.rows + 1, 2)),
                      ((2, 3, 5, 7), (2, 3, 7, 4)), ((s.rows * 2 + 1, 9), (9, s.cols + 3))]:
            dev.matmul(_ints(rng, s.in_width, shape[0]), _ints(rng, s.in_width, shape[1]))
        return dev.counts, rtl.total

    counts, total = await bridge(work)()
    assert counts.mismatches == 0
    assert counts.checked == counts.rtl == 2 + 8 + 4, counts
    assert total.cycles > 0 and total.overlap == 0        # one unit at a time here


@cocotb.test()
async def systolic_and_tiles_work_at_the_same_time(dut):
    driver = ChipDriver(dut, CFG)
    await driver.reset()
    t, s = CFG.tile, CFG.systolic
    rng = np.random.default_rng(5)
    A, B = _ints(rng, s.in_width, (2 * s.rows, 6)), _ints(rng, s.in_width, (6, 2 * s.cols))
    W = _ints(rng, t.weight_bits, (t.rows, t.cols))
    X = _ints(rng, t.input_bits, (4, t.rows))
    await driver.run(tile_ops={0: [(TileOp.PROGRAM, 0, W)]})
    model = ReramModel(CFG.physical_tile(0))
    model.program(0, W)
    steps = build_program(s, A, B).steps
    alone_sa = await driver.run(steps)
    alone_t = await driver.run(tile_ops={0: [(TileOp.MVM, 0, X)]})
    both = await driver.run(steps, {0: [(TileOp.MVM, 0, X)]})
    np.testing.assert_array_equal(alone_t.tile_results[0][0], model.mvm(X))
    np.testing.assert_array_equal(both.tile_results[0][0], model.mvm(X))
    out = np.zeros((A.shape[0], B.shape[1]), np.int64)
    place_results(s, steps, both.sa_outputs, out)
    np.testing.assert_array_equal(out, golden_matmul(s, A, B))
    assert both.overlap == min(alone_sa.active[0], alone_t.active[1])
    assert both.cycles == max(alone_sa.cycles, alone_t.cycles)
    assert both.active[0] == alone_sa.active[0] and both.active[1] == alone_t.active[1]
