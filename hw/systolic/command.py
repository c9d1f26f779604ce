"""The systolic core's command layout, shared by gateware, golden model and drivers."""

from __future__ import annotations

from functools import lru_cache

from amaranth import unsigned
from amaranth.lib import data, enum

from .config import SystolicConfig

__all__ = ["Op", "command_layout", "pack_command", "unpack_command"]


class Op(enum.Enum, shape=3):
    """Operations of the systolic core.

    ``LOAD_A``/``LOAD_B``/``LOAD_AB`` take ``count`` vectors from the ``a``/``b`` streams
    (both at once for ``LOAD_AB``) into scratchpad entries ``addr ..``. ``COMPUTE``
    multiplies entries ``addr .. addr+count-1`` (A column by B row, summed over the
    entries) into the accumulators, clearing them first unless ``accumulate`` is set.
    ``READ`` sends accumulator rows ``addr .. addr+count-1`` out on ``result``.
    """
    NOP = 0
    LOAD_A = 1
    LOAD_B = 2
    LOAD_AB = 3
    COMPUTE = 4
    READ = 5


@lru_cache(maxsize=None)
def command_layout(cfg: SystolicConfig) -> data.StructLayout:
    """The ``Command`` struct for ``cfg``; field widths follow the scratchpad depth."""
    return data.StructLayout({
        "op": Op,
        "accumulate": unsigned(1),
        "addr": unsigned(cfg.addr_width),
        "count": unsigned(cfg.count_width),
    })


@lru_cache(maxsize=4096)
def pack_command(cfg: SystolicConfig, op: Op, *, addr: int = 0, count: int = 0,
                 accumulate: bool = False) -> int:
    """Bits of one command, checked against the configuration's limits (memoised: tile
    programs repeat the same few commands thousands of times)."""
    limit = cfg.rows if op == Op.READ else cfg.k_depth
    if op != Op.NOP:
        if not 0 <= count <= limit:
            raise ValueError(f"{op.name} count must be in [0, {limit}], not {count}")
        if count and not (0 <= addr and addr + count <= limit):
            raise ValueError(f"{op.name} addr {addr} + count {count} exceeds {limit}")
    return command_layout(cfg).const({"op": op, "addr": addr, "count": count,
                                      "accumulate": int(accumulate)}).as_bits()


def unpack_command(cfg: SystolicConfig, bits: int) -> dict:
    layout = command_layout(cfg)
    out = {}
    for name, field in layout:
        raw = (bits >> field.offset) & ((1 << field.width) - 1)
        out[name] = Op(raw) if name == "op" else raw
    return out
