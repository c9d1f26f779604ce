"""The ReRAM tile's command and statistics layouts, shared by gateware, model and drivers."""

from __future__ import annotations

from functools import lru_cache

from amaranth import Shape, signed, unsigned
from amaranth.lib import data, enum

from ..layouts import fields_of
from .config import TileConfig

__all__ = ["TileOp", "tile_command_layout", "STATS_LAYOUT", "pack_tile_command",
           "unpack_tile_command", "unpack_stats", "conductance_row_layout",
           "programmed_row_layout"]

COUNT_WIDTH = 16


class TileOp(enum.Enum, shape=3):
    """Tile operations.

    ``PROGRAM`` writes ``count`` weight rows from the ``w`` stream into crossbar rows
    ``addr ..`` (write-verify, pulses counted per cell). ``MVM`` takes ``count`` vectors
    of ``rows`` inputs from ``vin`` and returns ``x @ W`` on ``vout``; ``MVM_T`` takes
    ``cols`` inputs and returns ``y @ W.T``. ``READ_STATS`` sends one ``STATS_LAYOUT``
    record on ``stats``; ``RESET_STATS`` clears busy cycles, total pulses and MVMs.
    """
    NOP = 0
    PROGRAM = 1
    MVM = 2
    MVM_T = 3
    READ_STATS = 4
    RESET_STATS = 5


@lru_cache(maxsize=None)
def tile_command_layout(cfg: TileConfig) -> data.StructLayout:
    return data.StructLayout({
        "op": TileOp,
        "addr": unsigned(max(1, (cfg.rows - 1).bit_length())),
        "count": unsigned(COUNT_WIDTH),
    })


@lru_cache(maxsize=None)
def conductance_row_layout(cfg: TileConfig) -> data.ArrayLayout:
    """One crossbar row as stored: a conductance code per cell, ``lanes`` cells per column
    (column-major: cell ``col * lanes + lane``, lanes in the order of
    :func:`sw.golden.reram.weight_levels`)."""
    code = signed(cfg.g_width) if cfg.g_signed else unsigned(cfg.g_width)
    return data.ArrayLayout(code, cfg.cols * cfg.lanes)


@lru_cache(maxsize=None)
def programmed_row_layout(cfg: TileConfig) -> data.StructLayout:
    """A row leaving write-verify: its conductance codes and the pulses each cell took."""
    cells = cfg.cols * cfg.lanes
    return data.StructLayout({
        "g": conductance_row_layout(cfg),
        "pulses": data.ArrayLayout(Shape.cast(range(cfg.verify_iters + 1)), cells),
    })


STATS_LAYOUT = data.StructLayout({
    "busy_cycles": unsigned(48),
    "total_pulses": unsigned(48),
    "max_pulses": unsigned(32),
    "over_limit": unsigned(32),
    "mvms": unsigned(48),
})


@lru_cache(maxsize=4096)
def pack_tile_command(cfg: TileConfig, op: TileOp, *, addr: int = 0, count: int = 0) -> int:
    if op == TileOp.PROGRAM and count and not (0 <= addr and addr + count <= cfg.rows):
        raise ValueError(f"PROGRAM rows {addr}..{addr + count - 1} exceed {cfg.rows} rows")
    if not 0 <= count < (1 << COUNT_WIDTH):
        raise ValueError(f"{op.name} count must be in [0, {(1 << COUNT_WIDTH) - 1}], not {count}")
    return tile_command_layout(cfg).const({"op": op, "addr": addr, "count": count}).as_bits()


def unpack_tile_command(cfg: TileConfig, bits: int) -> dict:
    """The fields of a tile command's bits (``op`` as a :class:`TileOp`)."""
    return fields_of(tile_command_layout(cfg), bits)


def unpack_stats(bits: int) -> dict:
    """The statistics record's fields."""
    return fields_of(STATS_LAYOUT, bits)
