"""cocotb testbench of the systolic core (run through tests/cosim/test_systolic_cocotb.py).

Driver: :class:`cosim.systolic_driver.SystolicDriver`; model and checker:
:mod:`sw.golden.systolic`. Every result is compared as exact integers; mismatches are
reported in decimal and hex with their position.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import Timer

from hw.systolic import Op, SystolicConfig, pack_command
from sw.golden.compare import first_difference
from sw.golden.systolic import SystolicModel, Step, build_program, matmul
from sw.golden.systolic import operands as golden_operands

from .systolic_driver import SystolicDriver

CFG = SystolicConfig.from_dict(json.loads(os.environ["HPT_CONFIG"]))


def check_equal(got: np.ndarray, want: np.ndarray, what: str) -> None:
    diff = first_difference(got, want, width=CFG.acc_width)
    assert diff is None, f"{what}: {diff}"


def operands(rng, kind: str, shape):
    return golden_operands(CFG, rng, kind, shape)


def shapes(rng):
    R, C, D = CFG.rows, CFG.cols, CFG.k_depth
    yield 1, 1, 1
    yield R, D, C                                   # exactly one tile, full scratchpad
    yield R + 1, 2 * D + 3, C + 2                   # K beyond the scratchpad, ragged tiles
    for _ in range(3):
        yield (int(rng.integers(1, 3 * R + 1)), int(rng.integers(1, 3 * D + 1)),
               int(rng.integers(1, 3 * C + 1)))


@cocotb.test()
async def matmul_random_and_extreme(dut):
    """Tiled matmuls of random and extreme matrices: exact results, exact cycle counts."""
    drv = SystolicDriver(dut, CFG)
    rng = np.random.default_rng(7)
    for m, k, n in shapes(rng):
        for kind_a, kind_b in (("random", "random"), ("min", "min"), ("max", "min"),
                               ("max", "max"), ("mixed", "mixed")):
            A, B = operands(rng, kind_a, (m, k)), operands(rng, kind_b, (k, n))
            program = build_program(CFG, A, B)
            got, cycles, active = await drv.run_program(program)
            check_equal(got, matmul(CFG, A, B), f"{m}x{k}x{n} {kind_a}@{kind_b}")
            assert active == program.cycles == CFG.matmul_cycles(m, k, n), \
                f"{m}x{k}x{n}: RTL active cycles {active}, model {program.cycles}"
            assert cycles == active + 1, f"harness bubbles: {cycles} cycles, {active} active"


def random_steps(rng, count: int) -> list[Step]:
    """Random back-to-back commands of every kind, legal for the configuration."""
    R, C, D = CFG.rows, CFG.cols, CFG.k_depth
    steps = []
    for _ in range(count):
        op = Op(int(rng.choice([0, 1, 2, 3, 4, 4, 5, 5])))
        if op == Op.READ:
            cnt = int(rng.integers(0, R + 1))
            addr = int(rng.integers(0, R - cnt + 1))
        else:
            cnt = int(rng.integers(0, D + 1))
            addr = int(rng.integers(0, D - cnt + 1))
        flags = {f: bool(rng.integers(0, 2)) for f in ("accumulate", "last")}
        flags["fence"] = rng.random() < 0.1
        banks = {b: int(rng.integers(0, 2)) for b in ("sbank", "obank")}
        cmd = pack_command(CFG, op, addr=addr, count=cnt, **flags, **banks)
        a = operands(rng, "random", (cnt, R)) if op in (Op.LOAD_A, Op.LOAD_AB) else None
        b = operands(rng, "random", (cnt, C)) if op in (Op.LOAD_B, Op.LOAD_AB) else None
        steps.append(Step(cmd, op, cnt, a=a, b=b))
    return steps


def model_run(model: SystolicModel, steps: list[Step]) -> list[np.ndarray]:
    reads = []
    for s in steps:
        rows = model.execute(s.cmd, s.a, s.b)
        if s.op == Op.READ and s.count:
            reads.append(rows)
    return reads


@cocotb.test()
async def back_to_back_commands(dut):
    """Long random command streams, back to back, with and without stalls."""
    drv = SystolicDriver(dut, CFG)
    rng = np.random.default_rng(11)
    # bring the RTL to the model's power-up state: zero scratchpads, reset accumulators
    D = CFG.k_depth
    await drv.run([Step(pack_command(CFG, Op.LOAD_AB, count=D, sbank=bank), Op.LOAD_AB, D,
                        a=np.zeros((D, CFG.rows), np.int64), b=np.zeros((D, CFG.cols), np.int64))
                   for bank in (0, 1)])
    await drv.reset()
    model = SystolicModel(CFG)
    for round_, stall in enumerate((0, 0, 90, 200)):
        steps = random_steps(rng, 60)
        model.new_run()                      # each harness run starts on an idle core
        before = model.cycles
        want = model_run(model, steps)
        res = await drv.run(steps, stall=stall, seed=round_ + 3)
        got = [r for r, s in zip(res.reads, [s for s in steps if s.op == Op.READ]) if s.count]
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            check_equal(g, w, f"round {round_} read {i}")
        expected = model.cycles - before
        if stall == 0:
            assert res.active == expected, f"active {res.active} != model {expected}"
        else:
            assert res.cycles > expected, "stalls should cost cycles"


@cocotb.test()
async def reset_in_the_middle(dut):
    """Reset during LOAD, COMPUTE and READ; afterwards accumulators are zero and a fresh
    program runs exactly."""
    drv = SystolicDriver(dut, CFG)
    rng = np.random.default_rng(13)
    m, k, n = 2 * CFG.rows, 2 * CFG.k_depth + 1, 2 * CFG.cols
    A, B = operands(rng, "random", (m, k)), operands(rng, "random", (k, n))
    program = build_program(CFG, A, B)
    for delay in (3, CFG.k_depth + 2, program.cycles // 2, program.cycles - 2):
        drv.start_only(program.steps)
        await Timer(10 * delay, unit="ns")
        await drv.reset()
        zero = await drv.run([Step(pack_command(CFG, Op.READ, addr=0, count=CFG.rows),
                                   Op.READ, CFG.rows)])
        check_equal(zero.reads[0], np.zeros((CFG.rows, CFG.cols), np.int64),
                    f"accumulators after reset at cycle {delay}")
        got, _, active = await drv.run_program(program)
        check_equal(got, matmul(CFG, A, B), f"after reset at cycle {delay}")
        assert active == program.cycles


@cocotb.test()
async def accumulate_across_calls(dut):
    """K chunks issued in separate calls keep accumulating in the array."""
    drv = SystolicDriver(dut, CFG)
    rng = np.random.default_rng(17)
    D = CFG.k_depth
    A = operands(rng, "random", (CFG.rows, 3 * D))
    B = operands(rng, "random", (3 * D, CFG.cols))
    for c in range(3):
        sl = slice(c * D, (c + 1) * D)
        await drv.run([
            Step(pack_command(CFG, Op.LOAD_A, count=D), Op.LOAD_A, D, a=A[:, sl].T),
            Step(pack_command(CFG, Op.LOAD_B, count=D), Op.LOAD_B, D, b=B[sl]),
            Step(pack_command(CFG, Op.COMPUTE, count=D, accumulate=c > 0, last=c == 2),
                 Op.COMPUTE, D)])
    res = await drv.run([Step(pack_command(CFG, Op.READ, count=CFG.rows), Op.READ, CFG.rows)])
    check_equal(res.reads[0], matmul(CFG, A, B), "three accumulated chunks")
