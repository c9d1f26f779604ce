"""Pack integer vectors into 32-bit words the way Amaranth lays out ``ArrayLayout``.

Element 0 of a vector occupies the least significant ``width`` bits; word 0 holds the
least significant 32 bits. The cocotb driver uses these to move whole matrices into
and out of the simulator's shared buffer in one numpy call each.
"""

from __future__ import annotations

import numpy as np

__all__ = ["words_per_vector", "pack_vectors", "unpack_vectors"]


def words_per_vector(length: int, width: int) -> int:
    return (length * width + 31) // 32


def pack_vectors(values, width: int) -> np.ndarray:
    """``(n, length)`` integers (two's complement, ``width`` bits) -> ``(n, words)`` uint32."""
    v = np.ascontiguousarray(values, dtype=np.int64)
    n, length = v.shape
    nw = words_per_vector(length, width)
    if width in (8, 16, 32) or width == 64:
        dt = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[width]
        raw = v.astype(dt).view(np.uint8).reshape(n, length * width // 8)
    else:
        bits = ((v[..., None].view(np.uint64) >> np.arange(width, dtype=np.uint64)) & 1)
        raw = np.packbits(bits.astype(np.uint8).reshape(n, length * width), axis=1,
                          bitorder="little")
    out = np.zeros((n, nw * 4), np.uint8)
    out[:, :raw.shape[1]] = raw
    return out.view("<u4").astype(np.uint32)


def unpack_vectors(words, length: int, width: int, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_vectors`: ``(n, words)`` uint32 -> ``(n, length)`` int64."""
    w = np.ascontiguousarray(words, dtype="<u4")
    n = w.shape[0]
    raw = w.view(np.uint8).reshape(n, 4 * w.shape[1])
    if width in (8, 16, 32, 64):
        dt = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}[width]
        if not signed:
            dt = np.dtype(dt).str.replace("i", "u")
        nbytes = length * width // 8
        out = np.ascontiguousarray(raw[:, :nbytes]).view(dt).astype(np.int64)
        return out.reshape(n, length)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :length * width]
    bits = bits.reshape(n, length, width).astype(np.uint64)
    u = (bits << np.arange(width, dtype=np.uint64)).sum(axis=2, dtype=np.uint64)
    if signed:
        shift = np.uint64(64 - width)
        return (u << shift).view(np.int64) >> np.int64(64 - width)
    return u.view(np.int64)
