"""Reading packed records on the host: one rule for every command and statistics layout."""

from __future__ import annotations

from amaranth.lib import data

__all__ = ["fields_of"]


def fields_of(layout: data.StructLayout, bits: int) -> dict:
    """``{field: value}`` of ``bits`` read through ``layout`` (``Layout.from_bits``: enum
    fields come back as their members, the rest as integers)."""
    view = layout.from_bits(bits)
    return {name: view[name] for name, _ in layout}
