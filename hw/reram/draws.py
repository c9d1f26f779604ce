"""The tile's hash and random draws in gateware: the RTL twins of :mod:`hw.reram.rng`
(whose constants they use) and of :mod:`sw.golden.reram`'s draws."""

from __future__ import annotations

from amaranth import Cat, Const, Signal, signed

from . import rng as R

__all__ = ["mix32", "gauss", "gauss_width", "bounded", "tree_sum"]


def mix32(m, x, name="mix"):
    """lowbias32 on a 32-bit Amaranth value (see :mod:`hw.reram.rng`).

    Every stage is a named signal: an expression that used its input twice would
    otherwise be duplicated by the backend at every stage.
    """
    stages = [lambda v: v[:32], lambda v: v ^ (v >> 16), lambda v: (v * R.MIX_M1)[:32],
              lambda v: v ^ (v >> 15), lambda v: (v * R.MIX_M2)[:32], lambda v: v ^ (v >> 16)]
    for n, f in enumerate(stages):
        sig = Signal(32, name=f"{name}_{n}")
        m.d.comb += sig.eq(f(x))
        x = sig
    return x


def gauss(m, h, mult, width: int, name: str):
    """Gaussian draw from hash word ``h`` with integer multiplier ``mult`` (a constant or
    a signal): Irwin-Hall of four 16-bit uniforms, scaled and rounded; the method and
    constants are :mod:`hw.reram.rng`'s, the numpy twin :func:`sw.golden.reram.gauss`."""
    h2 = mix32(m, h ^ R.STREAM_GAUSS, f"{name}_h2")
    s = Signal(signed(19), name=f"{name}_s")
    m.d.comb += s.eq(h[:16] + h[16:32] + h2[:16] + h2[16:32] - 2 * 0xFFFF)
    d = Signal(signed(width), name=f"{name}_d")
    m.d.comb += d.eq((s * mult + (1 << (R.GAUSS_SHIFT - 1))) >> R.GAUSS_SHIFT)
    return d


def gauss_width(mult: int) -> int:
    """Signed width of a draw of multiplier ``mult`` (its largest magnitude plus one)."""
    return (((2 * 0xFFFF * mult) >> R.GAUSS_SHIFT) + 1).bit_length() + 1


def bounded(h, bound: int):
    """Hash -> signed integer in [-bound, bound] (same map as :func:`sw.golden.reram.bounded`)."""
    if not bound:
        return Const(0, signed(2))
    scaled = (h[:16] * (2 * bound + 1)) >> 16                  # in [0, 2*bound], unsigned
    return Cat(scaled, Const(0, 1)).as_signed() - bound


def tree_sum(values):
    """Sum of Amaranth values as a balanced adder tree (0 for none)."""
    values = list(values)
    if not values:
        return Const(0)
    while len(values) > 1:
        values = [values[k] + values[k + 1] if k + 1 < len(values) else values[k]
                  for k in range(0, len(values), 2)]
    return values[0]
