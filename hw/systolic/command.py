"""The systolic core's command layout, shared by gateware, golden model and drivers."""

from __future__ import annotations

from functools import lru_cache

from amaranth import unsigned
from amaranth.lib import data, enum

from ..layouts import fields_of
from .config import SystolicConfig

__all__ = ["Op", "command_layout", "pack_command", "unpack_command"]


class Op(enum.Enum, shape=3):
    """Operations of the systolic core.

    ``LOAD_A``/``LOAD_B``/``LOAD_AB`` take ``count`` vectors from the ``a``/``b`` streams
    (both at once for ``LOAD_AB``) into entries ``addr ..`` of scratchpad bank ``sbank``.
    ``COMPUTE`` multiplies entries ``addr .. addr+count-1`` of bank ``sbank`` (A column by
    B row, summed over the entries) into the accumulators, clearing them first unless
    ``accumulate`` is set; with ``last`` set it ends an output tile: every PE copies its
    final sum into output bank ``obank`` as the last wavefront passes. ``READ`` sends rows
    ``addr .. addr+count-1`` of output bank ``obank`` out on ``result``.

    Each kind has its own engine (load, compute, read), so a LOAD, a COMPUTE and a READ run
    at once; commands are accepted in order, each when its engine is free and its banks
    are not in use by another engine (see :class:`hw.systolic.CoreTiming`). ``fence`` makes
    a command wait until every engine is idle (a program's first command: products then
    cost their own cycles, whatever ran before).
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
        "last": unsigned(1),
        "fence": unsigned(1),
        "sbank": unsigned(1),
        "obank": unsigned(1),
        "addr": unsigned(cfg.addr_width),
        "count": unsigned(cfg.count_width),
    })


@lru_cache(maxsize=4096)
def pack_command(cfg: SystolicConfig, op: Op, *, addr: int = 0, count: int = 0,
                 accumulate: bool = False, last: bool = False, fence: bool = False,
                 sbank: int = 0, obank: int = 0) -> int:
    """Bits of one command, checked against the configuration's limits (memoised: tile
    programs repeat the same few commands thousands of times)."""
    limit = cfg.rows if op == Op.READ else cfg.k_depth
    if op != Op.NOP:
        if not 0 <= count <= limit:
            raise ValueError(f"{op.name} count must be in [0, {limit}], not {count}")
        if count and not (0 <= addr and addr + count <= limit):
            raise ValueError(f"{op.name} addr {addr} + count {count} exceeds {limit}")
    for name, v in (("sbank", sbank), ("obank", obank)):
        if v not in (0, 1):
            raise ValueError(f"{op.name} {name} must be 0 or 1, not {v}")
    return command_layout(cfg).const({"op": op, "addr": addr, "count": count,
                                      "accumulate": int(accumulate), "last": int(last),
                                      "fence": int(fence), "sbank": sbank,
                                      "obank": obank}).as_bits()


def unpack_command(cfg: SystolicConfig, bits: int) -> dict:
    """The fields of a command's bits (``op`` as an :class:`Op`), by the layout."""
    return fields_of(command_layout(cfg), bits)

