"""`SystolicConfig`: the one description of a systolic core, and its cycle model."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

__all__ = ["SystolicConfig", "MatmulPlan"]


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
        Depth of the A and B scratchpads, in vectors: A holds ``rows x k_depth`` operands
        (one column of an A tile per entry), B holds ``k_depth x cols`` (one row of a B
        tile per entry). Products with a longer K are split into chunks of at most
        ``k_depth`` that accumulate in place. 2..65536 (a one-entry memory would have a
        zero-width address).
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
    # Every command spends one cycle being accepted, then the cycles below, assuming the
    # streams never stall. These formulas are the latency contract of the RTL; tests
    # compare them with cycle counts measured in simulation.
    def load_latency(self, count: int) -> int:
        """Cycles of LOAD_A / LOAD_B / LOAD_AB of ``count`` vectors (one vector per cycle)."""
        return 1 + count if count else 1

    def compute_latency(self, count: int) -> int:
        """Cycles of COMPUTE over ``count`` scratchpad entries: issue ``count`` reads, then
        drain the wavefront through ``rows + cols - 1`` PE hops."""
        return 1 + count + self.rows + self.cols - 1 if count else 1

    def read_latency(self, count: int) -> int:
        """Cycles of READ of ``count`` result rows (one row per cycle)."""
        return 1 + count if count else 1

    def plan(self, m: int, k: int, n: int) -> "MatmulPlan":
        return MatmulPlan(self, m, k, n)

    def matmul_cycles(self, m: int, k: int, n: int) -> int:
        """Closed-form cycles of the tiled (m x k) @ (k x n) product issued by :meth:`plan`.

        With ``tm = ceil(m/rows)`` row tiles, ``tn = ceil(n/cols)`` column tiles and
        ``tk = ceil(k/k_depth)`` K chunks, each output tile does ``tk`` LOAD_AB+COMPUTE
        pairs and one READ of its valid rows, so::

            cycles = tm*tn*(2*k + tk*(rows + cols + 1)) + tn*(tm + m)
        """
        for name, v in (("m", m), ("k", k), ("n", n)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"matmul dimension {name} must be a positive integer, not {v!r}")
        tm, tn, tk = math.ceil(m / self.rows), math.ceil(n / self.cols), math.ceil(k / self.k_depth)
        return tm * tn * (2 * k + tk * (self.rows + self.cols + 1)) + tn * (tm + m)


@dataclass(frozen=True)
class MatmulPlan:
    """How an (m x k) @ (k x n) product is cut into array tiles and K chunks.

    Output tile ``(i, j)`` covers rows ``i*rows ..`` and columns ``j*cols ..``; it is
    computed as ``LOAD_AB, COMPUTE`` per K chunk (the first chunk clears the
    accumulators, later ones accumulate), then ``READ`` of its valid rows. Partial tiles
    are zero-padded on the host side of the array.
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

    @property
    def cycles(self) -> int:
        """Cycles summed command by command (equals :meth:`SystolicConfig.matmul_cycles`)."""
        c = self.cfg
        per_col_tile = 0
        for _, mr in self.row_tiles:
            per_col_tile += sum(c.load_latency(kc) + c.compute_latency(kc) for _, kc in self.k_chunks)
            per_col_tile += c.read_latency(mr)
        return per_col_tile * len(self.col_tiles)
