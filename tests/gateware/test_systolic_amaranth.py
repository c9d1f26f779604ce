"""Fast tier: the systolic core under amaranth.sim against the golden model."""

import zlib

import numpy as np
import pytest
from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

from hw.systolic import Op, SystolicConfig, SystolicCore, pack_command
from sw.golden.systolic import (Step, SystolicModel, build_program, matmul, operands,
                                run_program)


STALL_P = 0.3


def simulate(cfg, steps, *, stall_seed=None, reset_during=None):
    """Run packed steps on the RTL; return (rows per READ, stats). Three testbench
    processes, as the co-simulation harness has: commands in order, the LOADs' vectors in
    order on ``a``/``b``, and the READs' rows collected from ``result``; the streams never
    wait for the command stream, so the core's engines overlap as in the harness. (Longer
    than most functions here: the three processes share the core, the stall generator and
    the rows collected, and read best side by side.)"""
    dut = SystolicCore(cfg)
    rng = np.random.default_rng(stall_seed)
    stats = {"cmds_done": False}
    vectors = [(step.a[k] if step.a is not None else None, step.b[k] if step.b is not None else None)
               for step in steps if step.op in (Op.LOAD_A, Op.LOAD_B, Op.LOAD_AB)
               for k in range(step.count)]
    if reset_during is not None:           # the reset drops the rest of that step's work
        vectors = [v for i, step in enumerate(steps) if step.op in (Op.LOAD_A, Op.LOAD_B, Op.LOAD_AB)
                   for v in ([(step.a[k] if step.a is not None else None,
                                step.b[k] if step.b is not None else None)
                               for k in range(step.count)] if i != reset_during else [])]
    reads = [step.count for i, step in enumerate(steps) if step.op == Op.READ and step.count
             and i != reset_during]
    rows_out = []

    def stall():
        return stall_seed is not None and rng.random() < STALL_P

    async def commands(ctx):
        cycles = 0

        async def tick():
            nonlocal cycles
            await ctx.tick()
            cycles += 1

        for index, step in enumerate(steps):
            if index == reset_during:
                # accept the command, let it run two cycles, then pulse reset
                ctx.set(dut.cmd.payload.as_value(), step.cmd)
                ctx.set(dut.cmd.valid, 1)
                while not ctx.get(dut.cmd.ready):
                    await tick()
                await tick()
                ctx.set(dut.cmd.valid, 0)
                await tick()
                stats["busy_at_reset"] = ctx.get(dut.busy)
                ctx.set(cd.rst, 1)
                await tick()
                ctx.set(cd.rst, 0)
                continue
            while stall():
                await tick()
            ctx.set(dut.cmd.payload.as_value(), step.cmd)
            ctx.set(dut.cmd.valid, 1)
            while not ctx.get(dut.cmd.ready):
                await tick()
            await tick()
            ctx.set(dut.cmd.valid, 0)
        while ctx.get(dut.busy) or len(rows_out) < sum(reads):
            await tick()
        stats["cycles"] = cycles
        stats["cmds_done"] = True

    async def feed(ctx):
        for a, b in vectors:
            while stall():
                await ctx.tick()
            for port, vec in ((dut.a, a), (dut.b, b)):
                if vec is not None:
                    for e, x in enumerate(vec):
                        ctx.set(port.payload[e], int(x))
                    ctx.set(port.valid, 1)
            port = dut.a if a is not None else dut.b
            while not ctx.get(port.ready):
                await ctx.tick()
            await ctx.tick()
            ctx.set(dut.a.valid, 0)
            ctx.set(dut.b.valid, 0)

    async def results(ctx):
        while len(rows_out) < sum(reads):
            ready = not stall()
            ctx.set(dut.result.ready, ready)
            if ready and ctx.get(dut.result.valid):
                rows_out.append([ctx.get(dut.result.payload[j]) for j in range(cfg.cols)])
            await ctx.tick()
        ctx.set(dut.result.ready, 0)

    top = Module()
    top.domains.sync = cd = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8, domain="sync")
    sim.add_testbench(commands)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(results, background=True)
    sim.run()
    assert stats["cmds_done"]
    out, at = [], 0
    for n in reads:
        out.append(np.array(rows_out[at:at + n], np.int64))
        at += n
    return out, stats


def assemble(program, reads):
    m, _, n = program.shape
    out = np.zeros((m, n), np.int64)
    for s, rows in zip([s for s in program.steps if s.out], reads):
        i0, j0, mr, nc = s.out
        out[i0:i0 + mr, j0:j0 + nc] = rows[:, :nc]
    return out


CASES = [
    (SystolicConfig(rows=1, cols=1, in_width=8, k_depth=4), (1, 1, 1)),
    (SystolicConfig(rows=2, cols=3, in_width=8, k_depth=4), (3, 9, 4)),
    (SystolicConfig(rows=3, cols=2, in_width=16, k_depth=5), (4, 7, 5)),
    (SystolicConfig(rows=2, cols=2, in_width=8, acc_width=16, k_depth=8), (2, 8, 2)),
]


@pytest.mark.parametrize("cfg,shape", CASES, ids=lambda c: getattr(c, "name", str(c)))
@pytest.mark.parametrize("kinds", [("random", "random"), ("min", "min"), ("max", "min"),
                                   ("mixed", "mixed")], ids=str)
def test_matmul_bit_exact_and_cycles(cfg, shape, kinds):
    m, k, n = shape
    rng = np.random.default_rng(zlib.crc32(f"{cfg.name} {kinds}".encode()))
    A, B = operands(cfg, rng, kinds[0], (m, k)), operands(cfg, rng, kinds[1], (k, n))
    program = build_program(cfg, A, B)
    reads, stats = simulate(cfg, program.steps)
    got = assemble(program, reads)
    np.testing.assert_array_equal(got, matmul(cfg, A, B))
    np.testing.assert_array_equal(got, run_program(SystolicModel(cfg), program))
    assert stats["cycles"] == program.cycles == cfg.matmul_cycles(m, k, n)


def test_accumulator_wraps_like_golden_model():
    cfg = SystolicConfig(rows=2, cols=2, in_width=8, acc_width=16, k_depth=8)
    A = np.full((2, 8), -128)
    B = np.full((8, 2), -128)       # 8 * 16384 = 131072 wraps in 16 bits
    program = build_program(cfg, A, B)
    reads, _ = simulate(cfg, program.steps)
    got = assemble(program, reads)
    assert (got == 131072 - 2 * 65536).all()   # independent of the model: 0
    np.testing.assert_array_equal(got, matmul(cfg, A, B))


def test_stalled_streams_give_same_result():
    cfg = SystolicConfig(rows=2, cols=3, in_width=8, k_depth=4)
    rng = np.random.default_rng(5)
    A = rng.integers(-128, 127, (4, 6), endpoint=True)
    B = rng.integers(-128, 127, (6, 5), endpoint=True)
    program = build_program(cfg, A, B)
    reads, stats = simulate(cfg, program.steps, stall_seed=3)
    np.testing.assert_array_equal(assemble(program, reads), matmul(cfg, A, B))
    assert stats["cycles"] > program.cycles


def test_reset_mid_compute_clears_accumulators_then_runs_clean():
    cfg = SystolicConfig(rows=2, cols=3, in_width=8, k_depth=4)
    rng = np.random.default_rng(1)
    A = rng.integers(-128, 127, (2, 4), endpoint=True)
    B = rng.integers(-128, 127, (4, 3), endpoint=True)
    steps = build_program(cfg, A, B).steps             # LOAD_AB, COMPUTE, READ
    assert [s.op for s in steps] == [Op.LOAD_AB, Op.COMPUTE, Op.READ]
    reads, stats = simulate(cfg, steps + steps, reset_during=1)
    assert stats["busy_at_reset"]
    np.testing.assert_array_equal(reads[0], np.zeros((2, 3), np.int64))
    np.testing.assert_array_equal(reads[1], matmul(cfg, A, B))


def test_reset_is_exact_for_the_array_registers_without_reset():
    """The array's data registers have no reset: after a reset in the middle of a tile
    (operands, partial sums and capture flags in flight) an output bank still reads as
    zeros, and an accumulating COMPUTE starts from zero, as the golden model's reset."""
    cfg = SystolicConfig(rows=3, cols=2, in_width=8, k_depth=5)
    rng = np.random.default_rng(4)
    R, C = cfg.rows, cfg.cols
    A2, B2 = rng.integers(-128, 127, (R, 4), endpoint=True), rng.integers(-128, 127, (4, C), endpoint=True)

    def read(obank):
        return Step(pack_command(cfg, Op.READ, count=R, obank=obank), Op.READ, R)
    then = [read(0), read(1),
            Step(pack_command(cfg, Op.LOAD_AB, count=4), Op.LOAD_AB, 4, a=A2.T.copy(), b=B2.copy()),
            Step(pack_command(cfg, Op.COMPUTE, count=4, accumulate=True, last=True), Op.COMPUTE, 4),
            read(0)]
    # reset two cycles into a COMPUTE of 5 entries (still feeding) or of 1 (its last
    # wavefront and capture flags draining through the array)
    for k in (5, 1):
        A1 = rng.integers(-128, 127, (R, k), endpoint=True)
        B1 = rng.integers(-128, 127, (k, C), endpoint=True)
        first = build_program(cfg, A1, B1).steps[:2]                    # LOAD_AB, COMPUTE
        assert first[1].op == Op.COMPUTE
        reads, stats = simulate(cfg, first + then, reset_during=1)
        assert stats["busy_at_reset"]
        np.testing.assert_array_equal(reads[0], np.zeros((R, C), np.int64))
        np.testing.assert_array_equal(reads[1], np.zeros((R, C), np.int64))
        np.testing.assert_array_equal(reads[2], A2 @ B2)


@pytest.mark.parametrize("cfg", [SystolicConfig(rows=1, cols=1, k_depth=4),
                                 SystolicConfig(rows=2, cols=3, k_depth=3)], ids=lambda c: c.name)
def test_random_command_streams_match_model_results_and_cycles(cfg):
    """Random commands of every kind with random banks, last and fence flags: every READ
    and, without stalls, the cycle count equal the golden model's (CoreTiming)."""
    rng = np.random.default_rng(cfg.rows * 7 + cfg.cols)
    R, C, D = cfg.rows, cfg.cols, cfg.k_depth
    for trial in range(4):
        steps = []
        for _ in range(40):
            op = Op(int(rng.choice([0, 1, 2, 3, 4, 4, 5, 5])))
            limit = R if op == Op.READ else D
            cnt = int(rng.integers(0, limit + 1))
            addr = int(rng.integers(0, limit - cnt + 1))
            cmd = pack_command(cfg, op, addr=addr, count=cnt,
                               accumulate=bool(rng.integers(0, 2)), last=bool(rng.integers(0, 2)),
                               fence=bool(rng.random() < 0.1), sbank=int(rng.integers(0, 2)),
                               obank=int(rng.integers(0, 2)))
            a = rng.integers(-128, 128, (cnt, R)) if op in (Op.LOAD_A, Op.LOAD_AB) else None
            b = rng.integers(-128, 128, (cnt, C)) if op in (Op.LOAD_B, Op.LOAD_AB) else None
            steps.append(Step(cmd, op, cnt, a=a, b=b))
        model = SystolicModel(cfg)
        want = [model.execute(s.cmd, s.a, s.b) for s in steps]
        want = [w for w, s in zip(want, steps) if s.op == Op.READ and s.count]
        stalled = trial % 2 == 1
        got, stats = simulate(cfg, steps, stall_seed=trial if stalled else None)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
        if not stalled:
            assert stats["cycles"] == model.cycles
