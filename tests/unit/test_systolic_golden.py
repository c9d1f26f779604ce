"""The golden model against an independent Python big-integer reference."""

import itertools

import numpy as np
import pytest

from hw.systolic import SystolicConfig
from sw.golden.systolic import (SystolicModel, build_program, check_operands, matmul, operands,
                                run_program, wrap)
from sw.device.packing import pack_vectors, unpack_vectors


def reference(A, B, acc_width):
    """Exact product with Python ints, wrapped to acc_width two's complement."""
    m, k = A.shape
    n = B.shape[1]
    out = np.zeros((m, n), dtype=object)
    for i in range(m):
        for j in range(n):
            s = sum(int(A[i, t]) * int(B[t, j]) for t in range(k))
            s &= (1 << acc_width) - 1
            out[i, j] = s - (1 << acc_width) if s >> (acc_width - 1) else s
    return out.astype(np.int64)


@pytest.mark.parametrize("bits", [2, 8, 16, 31, 32, 48, 63, 64])
def test_wrap_extremes(bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    x = np.array([lo, hi, 0, -1, 1], np.int64)
    np.testing.assert_array_equal(wrap(x, bits), x)
    if bits < 64:
        np.testing.assert_array_equal(wrap(np.array([hi + 1, lo - 1]), bits), [lo, hi])


SIZES = [(1, 1, 1), (3, 7, 5), (16, 16, 16), (5, 40, 2), (33, 70, 17)]
CFGS = [SystolicConfig(rows=4, cols=3, in_width=8, k_depth=8),
        SystolicConfig(rows=4, cols=3, in_width=8, acc_width=16, k_depth=8),
        SystolicConfig(rows=2, cols=5, in_width=16, k_depth=7),
        SystolicConfig(rows=3, cols=3, in_width=32, k_depth=5)]


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: c.name)
@pytest.mark.parametrize("shape", SIZES, ids=str)
@pytest.mark.parametrize("kinds", [("random", "random"), ("min", "min"), ("max", "max"),
                                   ("min", "max"), ("mixed", "mixed")], ids=str)
def test_model_matches_bigint_reference(cfg, shape, kinds):
    m, k, n = shape
    rng = np.random.default_rng(0)
    A, B = operands(cfg, rng, kinds[0], (m, k)), operands(cfg, rng, kinds[1], (k, n))
    want = reference(A, B, cfg.acc_width)
    np.testing.assert_array_equal(matmul(cfg, A, B), want)
    model = SystolicModel(cfg)
    program = build_program(cfg, A, B)
    np.testing.assert_array_equal(run_program(model, program), want)
    assert model.cycles == program.cycles == cfg.matmul_cycles(m, k, n)


def test_operands_out_of_range_are_rejected():
    cfg = SystolicConfig(in_width=8)
    with pytest.raises(ValueError, match=r"A has values outside the signed 8-bit range"):
        matmul(cfg, np.full((2, 2), 128), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="integers"):
        check_operands(cfg, np.array([0.5]), "x")
    with pytest.raises(ValueError, match="cannot multiply"):
        matmul(cfg, np.zeros((2, 3), int), np.zeros((2, 3), int))


@pytest.mark.parametrize("width,length",
                         list(itertools.product((2, 5, 8, 12, 16, 32, 48, 64), (1, 3, 16))))
def test_packing_matches_amaranth_array_layout(width, length):
    rng = np.random.default_rng(width * 100 + length)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    v = rng.integers(lo, hi, (6, length), endpoint=True, dtype=np.int64)
    v[0], v[1] = lo, hi
    words = pack_vectors(v, width)
    for r in range(len(v)):     # element i at bits [i*width, (i+1)*width), word 0 lowest
        big = sum((int(x) & ((1 << width) - 1)) << (i * width) for i, x in enumerate(v[r]))
        assert sum(int(w) << (32 * i) for i, w in enumerate(words[r])) == big
    np.testing.assert_array_equal(unpack_vectors(words, length, width), v)


def test_first_difference_names_the_first_differing_element():
    from sw.golden.compare import first_difference
    a = np.array([[1, 2], [3, -4]])
    assert first_difference(a, a.copy()) is None
    b = a.copy()
    b[1, 1], b[0, 1] = 7, 9
    assert first_difference(b, a, width=8) == (
        "2 of 4 elements differ; first at (0, 1): got 9 (0x9), want 2 (0x2)")
    assert first_difference(a[:1], a) == "got shape (1, 2) != want shape (2, 2)"
    assert "first at (0, 1): RTL 2, functional 9" in first_difference(
        a, b, got_name="RTL", want_name="functional")
    assert first_difference({"x": 1, "y": 2}, {"x": 1, "y": 3}).startswith("'y' got 2, want 3")
    assert first_difference({"x": 1}, {"x": 1}) is None
