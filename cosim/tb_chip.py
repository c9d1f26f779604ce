"""cocotb testbench of the chip (run through tests/cosim/test_chip_cocotb.py).

The RTL device (:class:`cosim.rtl_device.RtlDevice`) is driven from a bridge thread, as
the training loop drives it, and every op is checked against the functional golden
models by :class:`cosim.rtl_device.CheckedDevice`; a second test runs systolic and tile
work in one harness run and checks that the units overlap; a third checks that the cores
share independent products (:func:`hw.placement.assign_products`) in 1/N of the cycles.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.task import bridge, resume

from hw.manycore import ManycoreConfig
from hw.reram import TileOp
from sw.device.backends import FunctionalDevice, MatmulCall
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
    alone_sa = await driver.run({0: steps})
    alone_t = await driver.run(tile_ops={0: [(TileOp.MVM, 0, X)]})
    both = await driver.run({0: steps}, {0: [(TileOp.MVM, 0, X)]})
    np.testing.assert_array_equal(alone_t.tile_results[0][0], model.mvm(X))
    np.testing.assert_array_equal(both.tile_results[0][0], model.mvm(X))
    out = np.zeros((A.shape[0], B.shape[1]), np.int64)
    place_results(s, steps, both.core_outputs[0], out)
    np.testing.assert_array_equal(out, golden_matmul(s, A, B))
    assert both.overlap == min(alone_sa.core_active[0], alone_t.tile_active[0])
    assert both.cycles == max(alone_sa.cycles, alone_t.cycles)
    assert both.core_active == alone_sa.core_active and both.tile_active == alone_t.tile_active


@cocotb.test()
async def cores_share_independent_products(dut):
    """N cores finish a batch of independent products in 1/N of one core's cycles, and a
    concurrent group's products spread over the cores as the cycle model says; results
    exact."""
    from hw.placement import assign_products, core_loads
    driver = ChipDriver(dut, CFG)
    await driver.reset()
    s, n = CFG.systolic, CFG.systolic_cores
    rng = np.random.default_rng(7)
    A = _ints(rng, s.in_width, (2 * n, 2 * s.rows + 1, 20))
    B = _ints(rng, s.in_width, (2 * n, 20, s.cols + 3))
    one = s.matmul_cycles(2 * s.rows + 1, 20, s.cols + 3)
    # all 2N products on core 0, one program after another
    steps = [st for a, b in zip(A, B) for st in build_program(s, a, b).steps]
    alone = await driver.run({0: steps})
    assert alone.cycles == 2 * n * one + 1 and alone.core_active[0] == 2 * n * one

    def work():
        rtl = RtlDevice(driver, call=lambda fn, *a: resume(fn)(*a))
        dev = CheckedDevice(rtl, FunctionalDevice(HW))
        dev.matmul(A, B)                                   # the batch, split over the cores
        split = dev.take_stats()
        # one product alone: its output tiles over the cores
        big_a, big_b = _ints(rng, s.in_width, (3 * s.rows, 9)), _ints(rng, s.in_width, (9, 2 * s.cols))
        dev.matmul(big_a, big_b)
        tiles = dev.take_stats()
        # a concurrent group: products of several shapes with nothing on the tiles
        group = [MatmulCall(_ints(rng, s.in_width, (5, 2 * s.rows)),
                            _ints(rng, s.in_width, (2 * s.rows, 3))),
                 MatmulCall(_ints(rng, s.in_width, (2, 6, 4)),
                            _ints(rng, s.in_width, (2, 4, s.cols + 1)))]
        dev.parallel(group)
        grouped = dev.take_stats()
        return dev.counts, split, tiles, grouped, (big_a.shape[0], 9, big_b.shape[1])

    counts, split, tiles, grouped, big = await bridge(work)()
    assert counts.mismatches == 0 and counts.checked == counts.rtl == 4
    # round-robin: every core two products, at once
    assert split["rtl_systolic_active_cores"] == [2 * one] * n
    assert split["rtl_cycles"] == 2 * one + split["rtl_runs"]
    assert (alone.cycles - 1) == n * (split["rtl_cycles"] - split["rtl_runs"])
    want = core_loads(assign_products(s, n, [big]))
    assert tiles["rtl_systolic_active_cores"] == want
    assert tiles["rtl_cycles"] == max(want) + 1
    shapes = [(5, 2 * s.rows, 3), (6, 4, s.cols + 1), (6, 4, s.cols + 1)]
    assert grouped["rtl_systolic_active_cores"] == core_loads(assign_products(s, n, shapes))
