"""Backends: the functional device equals the golden models; quantization; op trace."""

import numpy as np
import pytest
import torch

from hw.reram import TileConfig
from hw.systolic import SystolicConfig
from hw.manycore import ManycoreConfig
from sw.device.backends import (FunctionalDevice, QuantizedBackend, TorchBackend,
                         make_backend, quantize)
from sw.golden.reram import ReramModel
from sw.golden.systolic import matmul as golden_matmul

HW = ManycoreConfig.single(SystolicConfig(rows=4, cols=4, k_depth=8),
                           TileConfig(rows=16, cols=8, write_latency=1).ideal(), 64)


def test_functional_systolic_equals_golden_model_including_wrap():
    hw = ManycoreConfig.single(SystolicConfig(rows=4, cols=4, in_width=8, acc_width=16), HW.tile, 64)
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
    dev = FunctionalDevice(ManycoreConfig.single(HW.systolic, tile, 64))
    rng = np.random.default_rng(2)
    W = rng.integers(-128, 127, (8, 8), endpoint=True)
    X = rng.integers(-128, 127, (5, 8), endpoint=True)
    dev.program("w", W)
    ref = ReramModel(tile)
    ref.program(0, W)
    np.testing.assert_array_equal(dev.mvm("w", X, False), ref.mvm(X))


@pytest.mark.parametrize("tile,shape", [
    (TileConfig(rows=16, cols=8, write_latency=1), (40, 19)),            # default devices, 3x3 tiles
    (TileConfig(rows=16, cols=8, write_latency=1, g_frac_bits=2, prog_variation=3,
                verify_iters=1, seed=5), (16, 8)),                        # rounding corrections
    (TileConfig(rows=16, cols=8, write_latency=1, stuck_on_ppm=100_000, seed=2), (33, 9)),
    (TileConfig(rows=8, cols=8, read_noise=2), (8, 8)),                   # no exact plan
])
def test_exact_float_paths_equal_the_integer_device(tile, shape):
    """What the backend runs in training (exact_mvm / exact_matmul on integer-valued
    floats) gives the integers of the device interface, and advances the same counters."""
    hw = ManycoreConfig.single(HW.systolic, tile, 64)
    fast, ref = FunctionalDevice(hw), FunctionalDevice(hw)
    rng = np.random.default_rng(3)
    W = rng.integers(-128, 127, shape, endpoint=True)
    W[0] = -128
    fast.program("w", W)
    ref.program("w", W)
    for transpose in (False, True):
        X = rng.integers(-128, 127, (13, shape[1] if transpose else shape[0]), endpoint=True)
        X[0], X[1] = -128, 127
        got = fast.exact_mvm("w", torch.from_numpy(X).float(), transpose)
        want = ref.mvm("w", X, transpose)
        if tile.read_noise:
            assert got is None
            continue
        assert got.dtype.is_floating_point
        np.testing.assert_array_equal(got.to(torch.int64).numpy(), want)
    for a, b in zip(sum(fast.tiles["w"], []), sum(ref.tiles["w"], [])):
        if not tile.read_noise:
            assert (a.mvms, a.cycles, a.noise_ctr) == (b.mvms, b.cycles, b.noise_ctr)
    A = rng.integers(-128, 127, (2, 7, 300), endpoint=True)
    B = rng.integers(-128, 127, (2, 300, 5), endpoint=True)
    A[0], B[0] = -128, -128
    got = fast.exact_matmul(torch.from_numpy(A).float(), torch.from_numpy(B).float())
    np.testing.assert_array_equal(got.to(torch.int64).numpy(), ref.matmul(A, B))


def test_exact_matmul_declines_when_the_accumulator_could_wrap():
    hw = ManycoreConfig.single(SystolicConfig(rows=4, cols=4, in_width=8, acc_width=16), HW.tile, 64)
    assert FunctionalDevice(hw).exact_matmul(torch.ones(2, 40), torch.ones(40, 2)) is None
    assert FunctionalDevice(hw).exact_matmul(torch.ones(2, 1), torch.ones(1, 2)) is not None


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


def test_frozen_matrices_take_consecutive_physical_tiles():
    hw = ManycoreConfig.single(HW.systolic, TileConfig(rows=16, cols=8, write_latency=1, seed=7), 3)
    dev = FunctionalDevice(hw)
    dev.program("a", np.ones((20, 8), np.int64))             # 2 x 1 blocks: tiles 0, 1
    assert [m.cfg.seed for line in dev.tiles["a"] for m in line] == [7, 8]
    with pytest.raises(ValueError, match="already programmed"):
        dev.program("a", np.ones((20, 8), np.int64))
    with pytest.raises(ValueError, match=r"'b' \(16x9, 2 blocks of 16x8\) does not fit: "
                                         r"blocks 2..3 of 3.*1 ReRAM tile\(s\) short"):
        dev.program("b", np.ones((16, 9), np.int64))         # would need tiles 2..3
    dev.program("c", np.ones((16, 8), np.int64))
    assert dev.tiles["c"][0][0].cfg.seed == 9
    with pytest.raises(ValueError, match=r"ManycoreConfig.tiles_per_core must be in \[1, 4096\], not 0"):
        ManycoreConfig.single(HW.systolic, HW.tile, 0)
