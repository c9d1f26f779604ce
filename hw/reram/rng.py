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


#: More stream identifiers (functional device models, :mod:`hw.reram.device`).
STREAM_GAUSS = 0x47415553       # "GAUS": the second word of a Gaussian draw
STREAM_RELAX = 0x52454C58       # "RELX": relaxation after write-verify, per cell
STREAM_DRIFT = 0x44524654       # "DRFT": retention spread and drift exponent, per cell
STREAM_ADC = 0x41444331         # "ADC1": ADC offsets and threshold errors, per ADC

#: Gaussian draws. A draw takes two 32-bit hash words ``h`` and ``mix32(h ^ STREAM_GAUSS)``,
#: splits them into four 16-bit uniforms and sums them (Irwin-Hall of order 4): ``s`` in
#: ``[-131070, 131070]`` with mean 0 and standard deviation :data:`GAUSS_STD`; its
#: kurtosis is 2.7 (a Gaussian's is 3) and its tails stop at 3.46 sigma. A draw of
#: standard deviation ``sigma`` codes is ``(s * M + 2**(GAUSS_SHIFT-1)) >> GAUSS_SHIFT``
#: with the integer multiplier ``M = gauss_multiplier(sigma)``: adds, one multiply and a
#: shift, as a gateware implementation would do it.
GAUSS_STD = 37837.2272      # sqrt(4 * (65536**2 - 1) / 12)
GAUSS_SHIFT = 24


def gauss_multiplier(sigma_codes: float) -> int:
    """Integer multiplier of a Gaussian draw of ``sigma_codes`` standard deviation."""
    return int(round(sigma_codes * (1 << GAUSS_SHIFT) / GAUSS_STD))
