"""Fast tier: tiny ReRAM tiles under amaranth.sim against the golden model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.reram import ReramTile, TileConfig, TileOp, pack_tile_command, unpack_stats
from sw.golden.reram import ReramModel


def run_tile(cfg, ops):
    """ops: list of (op, addr, data); returns (outputs per op, cycles)."""
    dut = ReramTile(cfg)
    outs, info = [], {}
    n = max(cfg.rows, cfg.cols)

    async def bench(ctx):
        cycles = 0

        async def tick():
            nonlocal cycles
            await ctx.tick()
            cycles += 1

        for op, addr, payload in ops:
            count = 0 if payload is None else len(payload)
            ctx.set(dut.cmd.payload.as_value(), pack_tile_command(cfg, op, addr=addr, count=count))
            ctx.set(dut.cmd.valid, 1)
            while not ctx.get(dut.cmd.ready):
                await tick()
            await tick()
            ctx.set(dut.cmd.valid, 0)
            if op == TileOp.PROGRAM:
                for wrow in payload:
                    for k, v in enumerate(wrow):
                        ctx.set(dut.w.payload[k], int(v))
                    ctx.set(dut.w.valid, 1)
                    while not ctx.get(dut.w.ready):
                        await tick()
                    await tick()
                    ctx.set(dut.w.valid, 0)
                outs.append(None)
            elif op in (TileOp.MVM, TileOp.MVM_T):
                res = []
                for vec in payload:
                    for k in range(n):
                        ctx.set(dut.vin.payload[k], int(vec[k]) if k < len(vec) else 0)
                    ctx.set(dut.vin.valid, 1)
                    while not ctx.get(dut.vin.ready):
                        await tick()
                    await tick()
                    ctx.set(dut.vin.valid, 0)
                    ctx.set(dut.vout.ready, 1)
                    while not ctx.get(dut.vout.valid):
                        await tick()
                    width = cfg.rows if op == TileOp.MVM_T else cfg.cols
                    res.append([ctx.get(dut.vout.payload[k]) for k in range(width)])
                    await tick()
                    ctx.set(dut.vout.ready, 0)
                outs.append(np.array(res, np.int64))
            elif op == TileOp.READ_STATS:
                ctx.set(dut.stats.ready, 1)
                while not ctx.get(dut.stats.valid):
                    await tick()
                outs.append(unpack_stats(ctx.get(dut.stats.payload.as_value())))
                await tick()
                ctx.set(dut.stats.ready, 0)
            else:
                outs.append(None)
        while ctx.get(dut.busy):
            await tick()
        info["cycles"] = cycles

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return outs, info["cycles"]


def run_model(cfg, ops):
    model = ReramModel(cfg)
    outs = model.run_ops(ops)
    return outs, model.cycles


CFGS = [
    TileConfig(rows=1, cols=1, write_latency=1, verify_iters=1).ideal(),
    TileConfig(rows=3, cols=2, cell_bits=2, weight_bits=4, input_bits=4, write_latency=2,
               verify_iters=3).ideal(),
    TileConfig(rows=2, cols=3, cell_bits=1, weight_bits=4, input_bits=5, dac_bits=2,
               adc_bits=3, write_latency=1, verify_iters=3, prog_variation=6, verify_tol=2,
               read_noise=5, stuck_on_ppm=150_000, stuck_off_ppm=150_000, seed=7),
    TileConfig(rows=4, cols=4, cell_bits=4, weight_bits=8, input_bits=6, dac_bits=3,
               adc_bits=5, write_latency=3, verify_iters=2, prog_variation=3, verify_tol=1,
               endurance=3, seed=3),
    # several rows per cycle (banked conductances): rows a multiple of P, not, and P > rows
    TileConfig(rows=5, cols=3, cell_bits=1, weight_bits=4, input_bits=5, dac_bits=2,
               adc_bits=3, write_latency=1, verify_iters=3, prog_variation=6, verify_tol=2,
               read_noise=5, stuck_on_ppm=150_000, stuck_off_ppm=150_000, seed=7,
               rows_per_cycle=2),
    TileConfig(rows=8, cols=2, cell_bits=2, weight_bits=4, input_bits=4, write_latency=1,
               verify_iters=2, rows_per_cycle=4).ideal(),
    TileConfig(rows=3, cols=4, cell_bits=2, weight_bits=4, input_bits=4, write_latency=1,
               verify_iters=2, read_noise=3, rows_per_cycle=4),
    # differential encoding (pairs of cells, signed ADC): ideal, lossy with every error
    TileConfig(rows=3, cols=2, cell_bits=2, weight_bits=4, input_bits=4, write_latency=1,
               verify_iters=2, encoding="differential").ideal(),
    TileConfig(rows=5, cols=3, cell_bits=1, weight_bits=4, input_bits=5, dac_bits=2,
               adc_bits=3, write_latency=1, verify_iters=3, prog_variation=6, verify_tol=2,
               read_noise=5, stuck_on_ppm=150_000, stuck_off_ppm=150_000, seed=7,
               rows_per_cycle=2, encoding="differential"),
    TileConfig(rows=4, cols=4, cell_bits=4, weight_bits=8, input_bits=6, dac_bits=3,
               adc_bits=6, write_latency=3, verify_iters=2, prog_variation=3, verify_tol=1,
               endurance=3, seed=3, encoding="differential"),
    # a Gaussian device (write-verify pulses and relaxation, signed conductance codes)
    TileConfig(rows=3, cols=2, cell_bits=2, weight_bits=4, input_bits=4, write_latency=1,
               verify_iters=3, verify_tol=1, device="wan2022-prog", seed=5),
    TileConfig(rows=5, cols=3, cell_bits=1, weight_bits=4, input_bits=5, dac_bits=2,
               adc_bits=4, write_latency=1, verify_iters=4, verify_tol=2, g_frac_bits=6,
               stuck_on_ppm=100_000, stuck_off_ppm=100_000, seed=9, rows_per_cycle=2,
               device="wan2022-prog", encoding="differential"),
]


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: c.name)
def test_tile_matches_golden_model(cfg):
    rng = np.random.default_rng(cfg.rows * 10 + cfg.cols)
    wlo, whi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
    xlo, xhi = -(1 << (cfg.input_bits - 1)), (1 << (cfg.input_bits - 1)) - 1
    W = rng.integers(wlo, whi, (cfg.rows, cfg.cols), endpoint=True)
    W[0, 0] = wlo
    X = rng.integers(xlo, xhi, (3, cfg.rows), endpoint=True)
    X[0] = xlo
    Y = rng.integers(xlo, xhi, (2, cfg.cols), endpoint=True)
    Y[0] = xhi
    ops = [(TileOp.PROGRAM, 0, W), (TileOp.MVM, 0, X), (TileOp.MVM_T, 0, Y),
           (TileOp.READ_STATS, 0, None), (TileOp.RESET_STATS, 0, None),
           (TileOp.PROGRAM, cfg.rows - 1, W[:1]), (TileOp.PROGRAM, 0, W),
           (TileOp.MVM, 0, X[:1]), (TileOp.READ_STATS, 0, None)]
    got, cycles = run_tile(cfg, ops)
    want, model_cycles = run_model(cfg, ops)
    for k, (g, w) in enumerate(zip(got, want)):
        if isinstance(w, np.ndarray):
            np.testing.assert_array_equal(g, w, err_msg=f"op {k} {ops[k][0].name}")
        else:
            assert g == w, f"op {k} {ops[k][0].name}: {g} != {w}"
    assert cycles == model_cycles
    if cfg.prog_variation == 0 and cfg.adc_shift == 0:        # ideal: exact integer products
        np.testing.assert_array_equal(got[1], X @ W)
        np.testing.assert_array_equal(got[2], Y @ W.T)
