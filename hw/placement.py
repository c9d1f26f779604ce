"""Placement: which ReRAM blocks hold each frozen matrix, and how many copies; and which
systolic core computes which part of a group of products.

Frozen matrices (:func:`place`). The one rule, used by the functional device, the RTL
device and the cost model alike:

* a frozen ``[in, out]`` matrix is cut into ``ceil(in / tile.rows) x ceil(out / tile.cols)``
  blocks (zero-padded), row-major;
* the first copy of every matrix takes consecutive physical blocks, matrices in the order
  given (so a matrix's first copy does not depend on the matrices placed after it, and
  devices can program one matrix at a time);
* the spare blocks are then filled with further copies of every matrix, the same number
  for each, up to ``ManycoreConfig.replication`` (``None``: as many as fit), again in
  order, copy by copy.

A model whose first copies do not fit gets one error naming the first matrix that does not
fit and the shortfall in ReRAM tiles.

Products (:func:`assign_products`). Independent products issued together (a batch of
attention heads, the LoRA products of a concurrent group) are spread over the
``systolic_cores`` cores by one rule, used by the RTL device (one program per piece on
the core's command channel), the host's trace (the cycle model of the group) and the cost
model (:func:`sw.cost.estimate.systolic_split_cycles`):

* at least as many products as cores: whole products, longest first (stable), each to
  the least-loaded core (the lowest index on a tie); a batch of equal products therefore
  goes round-robin, product ``i`` to core ``i % cores``;
* fewer products than cores: product ``p`` gets cores ``p*per .. p*per + per - 1`` with
  ``per = cores // products`` (the rest stay idle) and is cut into output row tiles, then
  column tiles: ``gr = min(per, row tiles)`` groups of ``ceil(row tiles / gr)`` row
  tiles, each into ``gc = min(per // gr, column tiles)`` groups of column tiles, one piece
  per core (groups that come out empty leave their core idle).

A core runs its pieces one after another (every program starts with a fence), so its
cycles are the sum of its pieces' :meth:`~hw.systolic.SystolicConfig.matmul_cycles`, and
the group lasts as long as the busiest core.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

from .manycore import ManycoreConfig

__all__ = ["MatrixPlacement", "Placement", "place", "PlacementError", "Piece",
           "assign_products", "core_loads"]


class PlacementError(ValueError):
    """The frozen matrices do not fit the manycore's ReRAM."""


@dataclass(frozen=True)
class MatrixPlacement:
    name: str
    shape: tuple[int, int]
    grid: tuple[int, int]                     # (row blocks, column blocks)
    copies: tuple                             # per copy: grid (rows of physical block ids)

    @property
    def blocks(self) -> int:
        """Blocks of one copy."""
        return self.grid[0] * self.grid[1]

    @property
    def first(self) -> tuple:
        """Physical blocks of the first copy, the one the devices compute on."""
        return self.copies[0]


@dataclass(frozen=True)
class Placement:
    cfg: ManycoreConfig
    matrices: dict                            # name -> MatrixPlacement, in placement order
    copies: int                               # copies of every matrix

    @property
    def blocks_used(self) -> int:
        return sum(m.blocks for m in self.matrices.values()) * self.copies

    @property
    def tiles_used(self) -> int:
        return -(-self.blocks_used // self.cfg.blocks_per_tile)

    @property
    def crossbars_used(self) -> int:
        return self.blocks_used * self.cfg.tile.crossbars

    def __getitem__(self, name: str) -> MatrixPlacement:
        return self.matrices[name]

    def to_dict(self) -> dict:
        return {"copies": self.copies, "blocks_used": self.blocks_used,
                "blocks": self.cfg.blocks, "tiles_used": self.tiles_used,
                "reram_tiles": self.cfg.reram_tiles,
                "matrices": {n: {"shape": list(m.shape), "grid": list(m.grid)}
                             for n, m in self.matrices.items()}}


def _n(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def place(cfg: ManycoreConfig, shapes) -> Placement:
    """Place the frozen matrices ``shapes`` (an ordered mapping ``name -> (in, out)``)."""
    grids, at = {}, 0
    for name, shape in shapes.items():
        rows, cols = (int(s) for s in shape)
        if rows < 1 or cols < 1:
            raise PlacementError(f"frozen matrix {name!r} has an empty shape {tuple(shape)}")
        tr, tc = cfg.tile_grid((rows, cols))
        if at + tr * tc > cfg.blocks:
            need = sum(-(-r // cfg.tile.rows) * -(-c // cfg.tile.cols)
                       for r, c in shapes.values())
            short = need - cfg.blocks
            tiles = -(-short // cfg.blocks_per_tile)
            raise PlacementError(
                f"frozen matrix {name!r} ({rows}x{cols}, {_n(tr * tc, 'block')} of "
                f"{cfg.tile.rows}x{cfg.tile.cols}) does not fit: blocks {at}..{at + tr * tc - 1} "
                f"of {cfg.blocks}; all frozen matrices need {need} blocks, {short} more than "
                f"the ReRAM holds: {tiles} ReRAM tile(s) short "
                f"({_n(cfg.blocks_per_tile, 'block')} per tile of {cfg.crossbars_per_tile} "
                f"crossbars)")
        grids[name] = ((rows, cols), (tr, tc), at)
        at += tr * tc
    per_copy = at
    copies = 1
    if per_copy:
        fit = cfg.blocks // per_copy
        copies = fit if cfg.replication is None else max(1, min(cfg.replication, fit))
    matrices = {}
    for name, (shape, (tr, tc), first) in grids.items():
        placed = []
        for c in range(copies):
            base = first + c * per_copy
            placed.append(tuple(tuple(base + i * tc + j for j in range(tc)) for i in range(tr)))
        matrices[name] = MatrixPlacement(name, shape, (tr, tc), tuple(placed))
    return Placement(cfg, matrices, copies)


@dataclass(frozen=True)
class Piece:
    """Part of product ``product`` (an index into the group) that one core computes:
    output rows ``rows[0]:rows[1]`` and columns ``cols[0]:cols[1]`` over all of ``k``;
    ``cycles`` is its program's cycle count."""
    product: int
    rows: tuple[int, int]
    cols: tuple[int, int]
    k: int
    cycles: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.rows[1] - self.rows[0], self.k, self.cols[1] - self.cols[0]


def _shape(i, shape) -> tuple[int, int, int]:
    try:
        dims = tuple(operator.index(v) for v in shape if not isinstance(v, bool))
    except TypeError:
        dims = ()
    if len(dims) != 3 or len(shape) != 3 or min(dims) < 1:
        raise ValueError(f"product {i}: shape must be three positive integers (m, k, n), "
                         f"not {shape!r}")
    return dims


def assign_products(sa, cores: int, shapes) -> tuple[tuple[Piece, ...], ...]:
    """Per core, the pieces of the products ``shapes`` (``(m, k, n)`` each) it computes,
    in order; see the module docstring for the rule."""
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise ValueError(f"systolic cores must be a positive integer, not {cores!r}")
    shapes = [_shape(i, s) for i, s in enumerate(shapes)]
    per_core: list[list[Piece]] = [[] for _ in range(cores)]
    if len(shapes) >= cores:
        loads = [0] * cores
        cost = [sa.matmul_cycles(*s) for s in shapes]
        for i in sorted(range(len(shapes)), key=lambda i: -cost[i]):
            c = loads.index(min(loads))
            m, k, n = shapes[i]
            per_core[c].append(Piece(i, (0, m), (0, n), k, cost[i]))
            loads[c] += cost[i]
        return tuple(tuple(p) for p in per_core)
    per = cores // len(shapes) if shapes else 0
    for i, (m, k, n) in enumerate(shapes):
        tm, tn = math.ceil(m / sa.rows), math.ceil(n / sa.cols)
        gr = min(per, tm)
        gc = min(per // gr, tn)
        rstep, cstep = math.ceil(tm / gr) * sa.rows, math.ceil(tn / gc) * sa.cols
        core = i * per
        for r0 in range(0, rstep * gr, rstep):
            for c0 in range(0, cstep * gc, cstep):
                if r0 < m and c0 < n:
                    r1, c1 = min(m, r0 + rstep), min(n, c0 + cstep)
                    per_core[core].append(Piece(i, (r0, r1), (c0, c1), k,
                                                sa.matmul_cycles(r1 - r0, k, c1 - c0)))
                core += 1
    return tuple(tuple(p) for p in per_core)


def core_loads(assignment) -> list[int]:
    """Cycles of each core under an :func:`assign_products` assignment."""
    return [sum(p.cycles for p in pieces) for pieces in assignment]
