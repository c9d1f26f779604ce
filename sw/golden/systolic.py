"""Bit-exact numpy model of the systolic core (:mod:`hw.systolic`).

Two levels, one numerics:

* :class:`SystolicModel` executes the core's commands one by one (scratchpads,
  accumulators, wrap-around), exactly as the RTL does; cocotb checkers feed it the same
  command stream they feed the simulator.
* :func:`matmul` is the fast path for a whole ``(m x k) @ (k x n)`` product: because the
  accumulators wrap modulo ``2**acc_width`` and every partial sum is exact, tiling and
  K-chunking do not change the result, which is ``wrap(A @ B)``. :func:`build_program`
  produces the tile-by-tile command stream (shared with the cocotb driver) and
  :func:`run_program` executes it on a :class:`SystolicModel`; tests prove both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.systolic import CoreTiming, Op, SystolicConfig, unpack_command

__all__ = ["wrap", "check_operands", "operands", "OPERAND_KINDS", "SystolicModel", "Step", "Program", "build_program",
           "run_program", "matmul"]


def wrap(x, bits: int) -> np.ndarray:
    """Two's-complement wrap of integers to ``bits`` (1..64) bits, as int64."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.uint64(64 - bits)
    return ((x.view(np.uint64) << shift).view(np.int64)) >> np.int64(64 - bits)


#: Operand kinds the tests and testbenches draw: uniform, every element the most negative
#: or the most positive input, and a mix of the extremes with -1, 0 and 1.
OPERAND_KINDS = ("random", "min", "max", "mixed")


def operands(cfg: SystolicConfig, rng, kind: str, shape) -> np.ndarray:
    """A test operand of ``shape`` in ``cfg``'s input range, of kind ``kind``
    (:data:`OPERAND_KINDS`)."""
    lo, hi = cfg.in_min, cfg.in_max
    if kind == "random":
        return rng.integers(lo, hi, shape, endpoint=True)
    if kind == "min":
        return np.full(shape, lo)
    if kind == "max":
        return np.full(shape, hi)
    if kind == "mixed":
        return rng.choice([lo, hi, -1, 0, 1], shape)
    raise ValueError(f"operand kind must be one of {OPERAND_KINDS}, not {kind!r}")


def check_operands(cfg: SystolicConfig, x, name: str) -> np.ndarray:
    """Return ``x`` as int64, or raise ``ValueError`` if it does not fit ``in_width`` bits."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integers, not {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < cfg.in_min or arr.max() > cfg.in_max):
        raise ValueError(f"{name} has values outside the signed {cfg.in_width}-bit range "
                         f"[{cfg.in_min}, {cfg.in_max}]: min {arr.min()}, max {arr.max()}")
    return arr


class SystolicModel:
    """Command-level model of one core: two scratchpad banks, accumulators, two output
    banks, wrap-around, and the cycle-exact timing of its engines (:class:`CoreTiming`).

    State after power-up and after reset: accumulators and output banks zero.
    Scratchpads start at zero and, like the RTL's memories, keep their contents across
    reset.
    """

    def __init__(self, cfg: SystolicConfig):
        self.cfg = cfg
        self.a_mem = np.zeros((2, cfg.k_depth, cfg.rows), np.int64)
        self.b_mem = np.zeros((2, cfg.k_depth, cfg.cols), np.int64)
        self.acc = np.zeros((cfg.rows, cfg.cols), np.int64)
        self.out = np.zeros((2, cfg.rows, cfg.cols), np.int64)
        self.timing = CoreTiming(cfg)
        self._base = 0

    @property
    def cycles(self) -> int:
        """Cycles of every run so far (each run starts with the core idle)."""
        return self._base + self.timing.cycles

    def new_run(self) -> None:
        """The next command starts a new run on an idle core (a harness run)."""
        self._base += self.timing.cycles
        self.timing = CoreTiming(self.cfg)

    def reset(self) -> None:
        self.acc[:] = 0
        self.out[:] = 0
        self.new_run()

    def _range(self, addr: int, count: int, limit: int, what: str) -> slice:
        if addr < 0 or addr + count > limit:
            raise ValueError(f"{what}: addr {addr} + count {count} exceeds {limit}")
        return slice(addr, addr + count)

    def load(self, op: Op, addr: int, a=None, b=None, sbank: int = 0) -> None:
        cfg = self.cfg
        if op in (Op.LOAD_A, Op.LOAD_AB):
            a = check_operands(cfg, a, "a vectors")
            a = a.reshape(len(a), cfg.rows)
            self.a_mem[sbank, self._range(addr, len(a), cfg.k_depth, op.name)] = a
        if op in (Op.LOAD_B, Op.LOAD_AB):
            b = check_operands(cfg, b, "b vectors")
            b = b.reshape(len(b), cfg.cols)
            self.b_mem[sbank, self._range(addr, len(b), cfg.k_depth, op.name)] = b

    def compute(self, addr: int, count: int, accumulate: bool, sbank: int = 0,
                last: bool = False, obank: int = 0) -> None:
        sl = self._range(addr, count, self.cfg.k_depth, "COMPUTE")
        prod = self.a_mem[sbank, sl].T @ self.b_mem[sbank, sl]     # int64, wraps mod 2**64
        self.acc = wrap((self.acc if accumulate else 0) + prod, self.cfg.acc_width)
        if last:
            self.out[obank] = self.acc

    def read(self, addr: int, count: int, obank: int = 0) -> np.ndarray:
        sl = self._range(addr, count, self.cfg.rows, "READ")
        return self.out[obank, sl].copy()

    def execute(self, cmd_bits: int, a=None, b=None) -> np.ndarray | None:
        """Execute one packed command; returns the rows a READ sends out."""
        c = unpack_command(self.cfg, cmd_bits)
        op, addr, count = c["op"], c["addr"], c["count"]
        self.timing.accept(op, count, sbank=c["sbank"], obank=c["obank"], last=bool(c["last"]),
                           fence=bool(c["fence"]))
        if count == 0 or op == Op.NOP:
            return None
        if op in (Op.LOAD_A, Op.LOAD_B, Op.LOAD_AB):
            self.load(op, addr, a, b, c["sbank"])
        elif op == Op.COMPUTE:
            self.compute(addr, count, bool(c["accumulate"]), c["sbank"], bool(c["last"]),
                         c["obank"])
        elif op == Op.READ:
            return self.read(addr, count, c["obank"])
        return None


@dataclass
class Step:
    """One command of a program and the operand vectors its streams carry.

    ``a``/``b`` hold the vectors a LOAD consumes (``(count, rows)``/``(count, cols)``);
    for a READ, ``out`` is ``(row0, col0, nrows, ncols)``: where the valid part of the
    returned rows lands in the output matrix.
    """
    cmd: int
    op: Op
    count: int
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    out: tuple[int, int, int, int] | None = None


@dataclass
class Program:
    cfg: SystolicConfig
    steps: list[Step]
    shape: tuple[int, int, int]          # (m, k, n)

    @property
    def cycles(self) -> int:
        """Cycles of the whole program on an idle core, without stalls (:class:`CoreTiming`)."""
        t = CoreTiming(self.cfg)
        for s in self.steps:
            c = unpack_command(self.cfg, s.cmd)
            t.accept(s.op, s.count, sbank=c["sbank"], obank=c["obank"], last=bool(c["last"]),
                     fence=bool(c["fence"]))
        return t.cycles


def build_program(cfg: SystolicConfig, A, B) -> Program:
    """Tile ``A @ B`` into core commands, software-pipelined
    (:meth:`hw.systolic.MatmulPlan.commands`)."""
    from hw.systolic import pack_command

    A = check_operands(cfg, A, "A")
    B = check_operands(cfg, B, "B")
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"cannot multiply shapes {A.shape} and {B.shape}")
    m, k = A.shape
    n = B.shape[1]
    R, C = cfg.rows, cfg.cols
    steps: list[Step] = []
    for c in cfg.plan(m, k, n).commands():
        cmd = pack_command(cfg, c.op, addr=0, count=c.count, accumulate=c.accumulate,
                           last=c.last, fence=c.fence, sbank=c.sbank, obank=c.obank)
        i0, j0, mr, nc = c.tile
        if c.op == Op.LOAD_AB:
            k0, kc = c.k
            a = np.zeros((kc, R), np.int64)
            a[:, :mr] = A[i0:i0 + mr, k0:k0 + kc].T
            b = np.zeros((kc, C), np.int64)
            b[:, :nc] = B[k0:k0 + kc, j0:j0 + nc]
            steps.append(Step(cmd, c.op, kc, a=a, b=b))
        elif c.op == Op.READ:
            steps.append(Step(cmd, c.op, mr, out=(i0, j0, mr, nc)))
        else:
            steps.append(Step(cmd, c.op, c.count))
    return Program(cfg, steps, (m, k, n))


def run_program(model: SystolicModel, program: Program) -> np.ndarray:
    """Execute ``program`` on ``model`` and assemble the output matrix."""
    m, _, n = program.shape
    out = np.zeros((m, n), np.int64)
    for s in program.steps:
        rows = model.execute(s.cmd, s.a, s.b)
        if s.out is not None:
            i0, j0, mr, nc = s.out
            out[i0:i0 + mr, j0:j0 + nc] = rows[:, :nc]
    return out


def matmul(cfg: SystolicConfig, A, B) -> np.ndarray:
    """What the core returns for ``A @ B``: the exact product wrapped to ``acc_width``."""
    A = check_operands(cfg, A, "A")
    B = check_operands(cfg, B, "B")
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"cannot multiply shapes {A.shape} and {B.shape}")
    return wrap(A @ B, cfg.acc_width)
