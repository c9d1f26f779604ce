"""Backends: the functional device equals the golden models; quantization; op trace."""

import numpy as np
import pytest
import torch

from hw.reram import TileConfig
from hw.systolic import SystolicConfig
from sw.backends import (FunctionalDevice, HardwareConfig, QuantizedBackend, TorchBackend,
                         make_backend, quantize)
from sw.golden.reram import ReramModel
from sw.golden.systolic import matmul as golden_matmul

HW = HardwareConfig(SystolicConfig(rows=4, cols=4, k_depth=8),
                    TileConfig(rows=16, cols=8, write_latency=1).ideal())


def test_functional_systolic_equals_golden_model_including_wrap():
    hw = HardwareConfig(SystolicConfig(rows=4, cols=4, in_width=8, acc_width=16), HW.tile)
    dev = FunctionalDevice(hw)
    rng = np.random.default_rng(0)
    A = rng.integers(-128, 127, (3, 5, 40), endpoint=True)
    B = rng.integers(-128, 127, (3, 40, 6), endpoint=True)
    A[0] = -128
    B[0] = -128                                  # 40 * 16384 wraps in 16 bits
    got = dev.matmul(A, B)
    for i in range(3):
        np.testing.assert_array_equal(got[i], golden_matmul(hw.systolic, A[i], B[i]))


@pytest.mark.parametrize("shape", [(16, 8), (20, 5), (40, 19), (1, 1)])
def test_functional_reram_tiles_large_matrices_exactly_when_ideal(shape):
    dev = FunctionalDevice(HW)
    rng = np.random.default_rng(1)
    W = rng.integers(-127, 127, shape, endpoint=True)
    dev.program("w", W)
    X = rng.integers(-127, 127, (6, shape[0]), endpoint=True)
    Y = rng.integers(-127, 127, (6, shape[1]), endpoint=True)
    np.testing.assert_array_equal(dev.mvm("w", X, False), X @ W)
    np.testing.assert_array_equal(dev.mvm("w", Y, True), Y @ W.T)


def test_functional_tile_uses_the_tile_model_bit_for_bit():
    tile = TileConfig(rows=8, cols=8, adc_bits=5, prog_variation=4, verify_tol=1, read_noise=3,
                      seed=9)
    dev = FunctionalDevice(HardwareConfig(HW.systolic, tile))
    rng = np.random.default_rng(2)
    W = rng.integers(-128, 127, (8, 8), endpoint=True)
    X = rng.integers(-128, 127, (5, 8), endpoint=True)
    dev.program("w", W)
    ref = ReramModel(tile)
    ref.program(0, W)
    np.testing.assert_array_equal(dev.mvm("w", X, False), ref.mvm(X))


def test_quantize_is_symmetric_per_tensor():
    q, s = quantize(torch.tensor([-2.0, 0.5, 1.0]), 8)
    assert s == pytest.approx(2.0 / 127)
    np.testing.assert_array_equal(q, [-127, 32, 64])
    q0, s0 = quantize(torch.zeros(3), 8)
    assert s0 == 1.0 and not q0.any()


def test_quantized_backend_tracks_torch_within_quantization_error():
    torch.manual_seed(0)
    W = torch.randn(20, 7)
    x = torch.randn(9, 20)
    fb, tb = make_backend("functional", HW), make_backend("torch", HW)
    for b in (fb, tb):
        b.program("w", W)
    err = (fb.mvm("w", x) - tb.mvm("w", x)).norm() / tb.mvm("w", x).norm()
    assert 0 < err < 0.03
    a, m = torch.randn(2, 5, 16), torch.randn(2, 16, 3)
    err = (fb.matmul(a, m) - tb.matmul(a, m)).norm() / (a @ m).norm()
    assert 0 < err < 0.03


def test_trace_counts_work():
    b = TorchBackend(HW)
    b.program("q", torch.randn(20, 7))           # 2 x 1 tiles of 16 x 8
    b.mvm("q", torch.randn(5, 20))
    b.mvm("q", torch.randn(5, 20))
    b.trace.phase = "low"
    b.matmul(torch.randn(3, 4, 6), torch.randn(3, 6, 2), "attn")
    rows = {(r["unit"], r["op"]): r for r in b.trace.to_list()}
    assert rows[("reram", "mvm")]["count"] == 2
    assert rows[("reram", "mvm")]["crossbar_reads"] == 2 * 5 * 2 * HW.tile.crossbar_reads()
    assert rows[("reram", "program")]["write_pulses"] == 2 * 16 * 8 * HW.tile.slices
    mm = rows[("systolic", "matmul")]
    assert mm["macs"] == 3 * 4 * 6 * 2 and mm["phase"] == "low"
    assert mm["cycles_model"] == 3 * HW.systolic.matmul_cycles(4, 6, 2)
    assert isinstance(QuantizedBackend(HW).device, FunctionalDevice)
