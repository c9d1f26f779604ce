"""How an integer result differs from its golden model: the one description every
checker uses (the co-simulated training's :class:`cosim.rtl_device.CheckedDevice`, the
cocotb testbenches of the systolic core and the ReRAM tile)."""

from __future__ import annotations

import numpy as np

__all__ = ["first_difference"]


def first_difference(got, want, *, width: int | None = None, got_name: str = "got",
                     want_name: str = "want") -> str | None:
    """None when ``got`` equals ``want`` (integer arrays, or dicts such as statistics
    records); else one line naming the first difference: for arrays the shapes when they
    differ, else how many elements differ and the first one's index and both values
    (with their two's-complement bits at ``width``, when given); for dicts the first
    differing key (sorted) and both records."""
    if isinstance(want, dict):
        if got == want:
            return None
        key = sorted((k for k in set(got) | set(want) if got.get(k) != want.get(k)), key=str)[0]
        return (f"{key!r} {got_name} {got.get(key)}, {want_name} {want.get(key)} "
                f"({got_name} {got}, {want_name} {want})")
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"{got_name} shape {got.shape} != {want_name} shape {want.shape}"
    bad = np.argwhere(got != want)
    if not len(bad):
        return None
    i = tuple(int(j) for j in bad[0])

    def value(x):
        return f"{int(x)} (0x{int(x) & ((1 << width) - 1):x})" if width else f"{int(x)}"
    return (f"{len(bad)} of {got.size} elements differ; first at {i}: {got_name} "
            f"{value(got[i])}, {want_name} {value(want[i])}")
