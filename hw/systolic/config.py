"""`SystolicConfig`: the one description of a systolic core, and its cycle model."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["SystolicConfig", "MatmulPlan", "PlanCommand", "CoreTiming"]


def _check_int(name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"SystolicConfig.{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"SystolicConfig.{name} must be in [{lo}, {hi}], not {value}")


@dataclass(frozen=True)
class SystolicConfig:
    """Parameters of an output-stationary systolic array with operand scratchpads.

    Numerics (shared bit for bit by the gateware and :mod:`sw.golden.systolic`):
    operands are ``in_width``-bit two's complement integers; each processing element (PE)
    forms the exact ``2*in_width``-bit product and adds it to an ``acc_width``-bit
    accumulator that **wraps** modulo ``2**acc_width`` (two's complement). Results are
    read back at full accumulator width; no requantization happens in the core (the
    host requantizes, in one place).

    Attributes
    ----------
    rows, cols:
        PE grid size. A tile of the output is ``rows x cols``. 1..128 each.
    in_width:
        Operand width in bits (signed). 2..32; 8 and 16 are the tested widths.
    acc_width:
        Accumulator width in bits (signed, wrapping). ``2*in_width .. 64``. Default
        ``2*in_width + 16``: exact (no wrap) for any K up to 65536 at full-scale operands.
    k_depth:
        Depth of each of the two A and B scratchpad banks, in vectors: a bank of A holds
        ``rows x k_depth`` operands (one column of an A tile per entry), of B
        ``k_depth x cols`` (one row of a B tile per entry); one bank loads while the other
        computes. Products with a longer K are split into chunks of at most ``k_depth``
        that accumulate in place. 2..65536 (a one-entry memory would have a zero-width
        address).
    """

    rows: int = 16
    cols: int = 16
    in_width: int = 8
    acc_width: int | None = None
    k_depth: int = 256

    def __post_init__(self):
        _check_int("rows", self.rows, 1, 128)
        _check_int("cols", self.cols, 1, 128)
        _check_int("in_width", self.in_width, 2, 32)
        if self.acc_width is None:
            object.__setattr__(self, "acc_width", min(64, 2 * self.in_width + 16))
        _check_int("acc_width", self.acc_width, 2 * self.in_width, 64)
        _check_int("k_depth", self.k_depth, 2, 65536)

    # ---- names and serialisation -------------------------------------------------------
    @property
    def name(self) -> str:
        """Verilog module / file / build-directory name; unique per configuration."""
        return (f"systolic_r{self.rows}_c{self.cols}_i{self.in_width}"
                f"_a{self.acc_width}_k{self.k_depth}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "SystolicConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"SystolicConfig has no field(s) {sorted(unknown)}")
        return cls(**d)

    # ---- derived widths ----------------------------------------------------------------
    @property
    def addr_width(self) -> int:
        """Width of scratchpad / row addresses in a command."""
        return max(1, (max(self.k_depth, self.rows) - 1).bit_length())

    @property
    def count_width(self) -> int:
        """Width of a command's count field (counts 0..max(k_depth, rows))."""
        return max(self.k_depth, self.rows).bit_length()

    @property
    def in_min(self) -> int:
        return -(1 << (self.in_width - 1))

    @property
    def in_max(self) -> int:
        return (1 << (self.in_width - 1)) - 1

    # ---- cycle model -------------------------------------------------------------------
    def plan(self, m: int, k: int, n: int) -> "MatmulPlan":
        return MatmulPlan(self, m, k, n)

    def matmul_cycles(self, m: int, k: int, n: int) -> int:
        """Cycles of the tiled ``(m x k) @ (k x n)`` program of :meth:`plan`, from its first
        command's acceptance to its last busy cycle (:class:`CoreTiming` over the plan's
        commands; exact, tested against the RTL). In steady state an output tile of a
        K chunk of ``kc`` entries costs ``kc + 2`` cycles when ``kc`` covers the loads,
        the skew drain and the reads (``kc >= rows + cols + mr``); shorter chunks are
        bound by the drain and the read of the tile before."""
        for name, v in (("m", m), ("k", k), ("n", n)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"matmul dimension {name} must be a positive integer, not {v!r}")
        return _matmul_cycles(self, m, k, n)


@lru_cache(maxsize=4096)
def _matmul_cycles(cfg: SystolicConfig, m: int, k: int, n: int) -> int:
    return MatmulPlan(cfg, m, k, n).cycles


#: The engine each command kind runs on (by :class:`hw.systolic.Op` name).
_KIND = {"LOAD_A": "load", "LOAD_B": "load", "LOAD_AB": "load", "COMPUTE": "compute",
         "READ": "read"}


class CoreTiming:
    """When each command is accepted and when the core goes idle: the RTL's latency
    contract, for streams that never stall.

    The core has three engines that run at once: *load* (one vector per cycle into
    scratchpad bank ``sbank``), *compute* (one scratchpad entry per cycle into the array;
    the wavefront then needs ``rows + cols - 1`` more cycles to pass every PE) and *read*
    (one output row per cycle from output bank ``obank``). Commands are accepted in order,
    at most one per cycle, each in the first cycle in which

    * its engine is idle;
    * LOAD: the compute engine is not issuing from the same scratchpad bank;
    * COMPUTE: the load engine is not loading the same scratchpad bank;
    * READ: the output bank's last capture has passed every PE (``rows + cols`` cycles
      after the last wavefront of the COMPUTE that ended the tile was issued);
    * ``fence``: every engine is idle and every wavefront has drained.

    A COMPUTE that ends a tile (``last``) holds its last wavefront while the read engine
    is reading the output bank it will overwrite. A command with ``count == 0`` (or a NOP)
    only takes its acceptance cycle. The first command is accepted in cycle 0;
    :attr:`cycles` counts cycles 0 .. the last busy cycle.
    """

    def __init__(self, cfg: SystolicConfig):
        self.cfg = cfg
        self.t = -1                       # cycle of the last accepted command
        self.end = -1                     # last cycle in which the core is busy
        self.load_end, self.load_bank = -1, 0
        self.comp_end, self.comp_bank = -1, 0       # cycle of the last wavefront issued
        self.read_end, self.read_bank = -1, 0
        self.cap_ready = [0, 0]           # first cycle a READ of output bank o may start

    def accept(self, op, count: int, *, sbank: int = 0, obank: int = 0, last: bool = False,
               fence: bool = False) -> int:
        """Account one command (``op`` an :class:`hw.systolic.Op` or its name); returns
        the cycle in which it is accepted."""
        kind = _KIND.get(getattr(op, "name", op))
        T = self.t + 1
        if fence:
            T = max(T, self.end + 1)
        busy_end = T
        if count and kind == "load":
            T = max(T, self.load_end + 1, self.comp_end + 1 if self.comp_bank == sbank else 0)
            busy_end = self.load_end = T + count
            self.load_bank = sbank
        elif count and kind == "compute":
            T = max(T, self.comp_end + 1, self.load_end + 1 if self.load_bank == sbank else 0)
            x = T + count
            if last and self.read_bank == obank:
                x = max(x, self.read_end + 1)
            self.comp_end, self.comp_bank = x, sbank
            if last:
                self.cap_ready[obank] = x + self.cfg.rows + self.cfg.cols
            busy_end = x + self.cfg.rows + self.cfg.cols - 1
        elif count and kind == "read":
            T = max(T, self.read_end + 1, self.cap_ready[obank])
            busy_end = self.read_end = T + count
            self.read_bank = obank
        self.t = T
        self.end = max(self.end, T, busy_end)
        return T

    @property
    def cycles(self) -> int:
        return self.end + 1


@dataclass(frozen=True)
class MatmulPlan:
    """How an (m x k) @ (k x n) product is cut into array tiles and K chunks.

    Output tile ``(i, j)`` covers rows ``i*rows ..`` and columns ``j*cols ..``; it is
    computed as ``LOAD_AB, COMPUTE`` per K chunk (the first chunk clears the
    accumulators, later ones accumulate, the last captures into an output bank), then
    ``READ`` of its valid rows; :meth:`commands` interleaves the tiles for the engines.
    Partial tiles are zero-padded on the host side of the array.
    """

    cfg: SystolicConfig
    m: int
    k: int
    n: int

    @property
    def row_tiles(self) -> list[tuple[int, int]]:
        r = self.cfg.rows
        return [(i, min(r, self.m - i)) for i in range(0, self.m, r)]

    @property
    def col_tiles(self) -> list[tuple[int, int]]:
        c = self.cfg.cols
        return [(j, min(c, self.n - j)) for j in range(0, self.n, c)]

    @property
    def k_chunks(self) -> list[tuple[int, int]]:
        d = self.cfg.k_depth
        return [(k0, min(d, self.k - k0)) for k0 in range(0, self.k, d)]

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n

    def commands(self) -> list["PlanCommand"]:
        """The program, software-pipelined for the core's three engines: the K chunks
        of every output tile in order (column tiles outer, row tiles inner), chunk ``g``
        in scratchpad bank ``g % 2`` and tile ``t`` in output bank ``t % 2``; chunk
        ``g + 1`` loads while chunk ``g`` computes, and tile ``t - 1`` is read while tile
        ``t`` computes. The first command fences (waits for an idle core)."""
        chunks = [(t, i0, mr, j0, nc, k0, kc, c == len(self.k_chunks) - 1)
                  for t, ((j0, nc), (i0, mr)) in enumerate(
                      (jt, it) for jt in self.col_tiles for it in self.row_tiles)
                  for c, (k0, kc) in enumerate(self.k_chunks)]
        out = []

        def load(g):
            t, i0, mr, j0, nc, k0, kc, _ = chunks[g]
            out.append(PlanCommand("LOAD_AB", kc, sbank=g % 2, fence=g == 0,
                                   tile=(i0, j0, mr, nc), k=(k0, kc)))

        def read(g):
            t, i0, mr, j0, nc, _, _, _ = chunks[g]
            out.append(PlanCommand("READ", mr, obank=t % 2, tile=(i0, j0, mr, nc)))

        load(0)
        done = []                                   # chunks that ended a tile
        for g, (t, i0, mr, j0, nc, k0, kc, final) in enumerate(chunks):
            if g + 1 < len(chunks):
                load(g + 1)
            out.append(PlanCommand("COMPUTE", kc, sbank=g % 2, obank=t % 2, last=final,
                                   accumulate=k0 > 0, tile=(i0, j0, mr, nc), k=(k0, kc)))
            if final:
                if done:
                    read(done[-1])
                done.append(g)
        read(done[-1])
        return out

    @property
    def cycles(self) -> int:
        """Cycles of :meth:`commands` on a :class:`CoreTiming` (equals
        :meth:`SystolicConfig.matmul_cycles`)."""
        t = CoreTiming(self.cfg)
        for c in self.commands():
            t.accept(c.op_name, c.count, sbank=c.sbank, obank=c.obank, last=c.last,
                     fence=c.fence)
        return t.cycles


@dataclass(frozen=True)
class PlanCommand:
    """One command of a :class:`MatmulPlan` program: the op (a name of
    :class:`hw.systolic.Op`), its count and bank fields, and what it works on
    (``tile = (row0, col0, rows, cols)`` of the output, ``k = (k0, kc)``)."""
    op_name: str
    count: int
    sbank: int = 0
    obank: int = 0
    last: bool = False
    accumulate: bool = False
    fence: bool = False
    tile: tuple = ()
    k: tuple = ()

    @property
    def op(self):
        from .command import Op
        return Op[self.op_name]
