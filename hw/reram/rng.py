"""The tile's counter-based random generator: one definition for gateware and models.

Every random quantity of the tile (programming error per cell and pulse, stuck-at faults,
read noise per conversion) is a pure function of the seed and of counters the hardware
keeps, so the RTL (:mod:`hw.reram.tile`) and the numpy model (:mod:`sw.golden.reram`)
produce the same values in any order. The mixer is ``lowbias32`` (C. Wellons, "Hash
function prospector", 2018): two multiplies and three xor-shifts on 32 bits; the
gateware's version is :func:`hw.reram.tile.mix32`, the numpy one
:func:`sw.golden.reram.mix32`, and the constants live here.
"""

MIX_M1 = 0x7FEB352D
MIX_M2 = 0x846CA68B
GOLDEN = 0x9E3779B9          # counter strides (odd constants)
STRIDE = 0x85EBCA6B

#: Stream identifiers, so different uses of the generator never share values.
STREAM_VARIATION = 0x56415249   # "VARI"
STREAM_FAULT = 0x46415554       # "FAUT"
STREAM_NOISE = 0x4E4F4953       # "NOIS"

MASK32 = 0xFFFFFFFF


def mix32_int(x: int) -> int:
    """lowbias32 on a Python int (used for constants computed at elaboration)."""
    x &= MASK32
    x ^= x >> 16
    x = (x * MIX_M1) & MASK32
    x ^= x >> 15
    x = (x * MIX_M2) & MASK32
    x ^= x >> 16
    return x


def salt_int(seed: int, stream: int, a: int = 0, b: int = 0) -> int:
    return mix32_int(seed ^ stream ^ ((a * GOLDEN + b * STRIDE) & MASK32))


def ppm_threshold(ppm: int) -> int:
    """Hash values below this threshold occur with probability ppm / 1e6."""
    return (ppm * (1 << 32)) // 1_000_000
