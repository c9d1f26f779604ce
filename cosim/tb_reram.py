"""cocotb testbench of the ReRAM tile (run through tests/cosim/test_reram_cocotb.py).

Driver: :class:`cosim.tile_harness.TileDriver`; model and checker:
:class:`sw.golden.reram.ReramModel`. One model instance follows the RTL through all
tests (conductances and wear persist across reset in both), so every test starts with a
reset of both.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np

from hw.reram import TileConfig, TileOp
from sw.golden.compare import first_difference
from sw.golden.reram import ReramModel

from .tile_harness import TileDriver

CFG = TileConfig.from_dict(json.loads(os.environ["HPT_CONFIG"]))
MODEL = ReramModel(CFG)
IDEAL = (CFG.prog_variation == 0 and CFG.read_noise == 0 and CFG.stuck_on_ppm == 0
         and CFG.stuck_off_ppm == 0 and CFG.adc_shift == 0)


def model_ops(ops):
    return MODEL.run_ops(ops)


def check(got, want, what):
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        diff = first_difference(g, w, width=CFG.out_width) if isinstance(w, np.ndarray) \
            else (None if g == w else f"got {g}, want {w}")
        assert diff is None, f"{what}, op {k}: {diff}"


async def run_checked(drv, ops, what, *, stall=0):
    before = MODEL.cycles
    want = model_ops(ops)
    res = await drv.run(ops, stall=stall, seed=len(ops) + 1)
    if stall:          # busy cycles include stalls, so the statistics differ; outputs do not
        got = [g for g, (op, _, _) in zip(res.outputs, ops) if op != TileOp.READ_STATS]
        exp = [w for w, (op, _, _) in zip(want, ops) if op != TileOp.READ_STATS]
        check(got, exp, what)
    else:
        check(res.outputs, want, what)
        assert res.active == MODEL.cycles - before, \
            f"{what}: RTL active cycles {res.active}, model {MODEL.cycles - before}"
        assert res.cycles == res.active + 1
    return res


def rand_w(rng, shape):
    lo, hi = -(1 << (CFG.weight_bits - 1)), (1 << (CFG.weight_bits - 1)) - 1
    w = rng.integers(lo, hi, shape, endpoint=True)
    w.flat[0] = lo
    w.flat[-1] = hi
    return w


def rand_x(rng, shape):
    lo, hi = -(1 << (CFG.input_bits - 1)), (1 << (CFG.input_bits - 1)) - 1
    x = rng.integers(lo, hi, shape, endpoint=True)
    x[0] = lo                      # extremes: all minimum, all maximum, mixed
    if len(x) > 1:
        x[1] = hi
    if len(x) > 2:
        x[2] = np.where(np.arange(shape[1]) % 2, lo, hi)
    return x


async def fresh(dut):
    drv = TileDriver(dut, CFG)
    await drv.reset()
    MODEL.reset()
    return drv


@cocotb.test()
async def program_and_mvm(dut):
    """Program random weights, then MVM and MVM_T with random and extreme inputs."""
    drv = await fresh(dut)
    rng = np.random.default_rng(21)
    W = rand_w(rng, (CFG.rows, CFG.cols))
    X, Y = rand_x(rng, (5, CFG.rows)), rand_x(rng, (4, CFG.cols))
    res = await run_checked(drv, [(TileOp.PROGRAM, 0, W), (TileOp.MVM, 0, X),
                                  (TileOp.MVM_T, 0, Y), (TileOp.READ_STATS, 0, None)],
                            "program+mvm")
    if IDEAL:     # independent of the model: exact integer products
        np.testing.assert_array_equal(res.outputs[1], X @ W)
        np.testing.assert_array_equal(res.outputs[2], Y @ W.T)


@cocotb.test()
async def reprogram_counters_and_endurance(dut):
    """Reprogram rows repeatedly; pulse counters, endurance flags, RESET_STATS."""
    drv = await fresh(dut)
    rng = np.random.default_rng(22)
    ops = []
    for k in range(4):
        r0 = int(rng.integers(0, CFG.rows))
        n = int(rng.integers(1, CFG.rows - r0 + 1))
        ops += [(TileOp.PROGRAM, r0, rand_w(rng, (n, CFG.cols))),
                (TileOp.MVM, 0, rand_x(rng, (2, CFG.rows))), (TileOp.READ_STATS, 0, None)]
        if k == 1:
            ops.append((TileOp.RESET_STATS, 0, None))
    ops.append((TileOp.NOP, 0, None))
    ops.append((TileOp.MVM_T, 0, rand_x(rng, (2, CFG.cols))))
    ops.append((TileOp.READ_STATS, 0, None))
    res = await run_checked(drv, ops, "reprogram")
    stats = res.outputs[-1]
    assert stats["total_pulses"] > 0 and stats["max_pulses"] >= 1


@cocotb.test()
async def stalls_do_not_change_results(dut):
    """Random stalls on every stream: same outputs as without."""
    drv = await fresh(dut)
    rng = np.random.default_rng(23)
    ops = [(TileOp.PROGRAM, 0, rand_w(rng, (CFG.rows, CFG.cols))),
           (TileOp.MVM, 0, rand_x(rng, (3, CFG.rows))), (TileOp.MVM_T, 0, rand_x(rng, (3, CFG.cols)))]
    await run_checked(drv, ops, "stalled", stall=120)
