"""Placement: which ReRAM blocks hold each frozen matrix, and how many copies.

The one rule, used by the functional device, the RTL device and the cost model alike:

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
"""

from __future__ import annotations

from dataclasses import dataclass

from .manycore import ManycoreConfig

__all__ = ["MatrixPlacement", "Placement", "place", "PlacementError"]


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
        return self.blocks_used * self.cfg.tile.slices

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
