"""What a wave file holds, without a wave viewer: the time range in an FST's header.

FST (GTKWave's format, written by Verilator's ``--trace-fst``) starts with a header block:
block type 0, section length, start time and end time (big-endian 64-bit), ... and the
time-scale exponent. Used by tests and by ``hpt train --waves`` to report the window.
"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["fst_time_range"]

_HEADER = struct.Struct(">BQQQdQQQQQb")


def fst_time_range(path) -> tuple[float, float]:
    """``(first, last)`` simulation time stamped in the FST ``path``, in seconds."""
    raw = Path(path).read_bytes()[:_HEADER.size]
    if len(raw) < _HEADER.size or raw[0] != 0:
        raise ValueError(f"{path}: not an FST file (no header block)")
    _, _, start, end, *_, exponent = _HEADER.unpack(raw)
    return start * 10.0 ** exponent, end * 10.0 ** exponent
