"""Device models (hw.reram.device), differential encoding and calibrated ADC ranges in the
functional tile model: statistics from many samples against the stated parameters."""

import dataclasses

import numpy as np
import pytest
import torch

from hw.reram import TileConfig
from hw.reram import device as D
from hw.reram import rng as R
from sw.golden.reram import ReramModel, gauss, input_digits, mix32


@pytest.fixture
def variant(monkeypatch):
    """Register a modified copy of a preset as device ``"t"`` for one test."""
    def make(base="wan2022", **changes):
        monkeypatch.setitem(D.DEVICES, "t", dataclasses.replace(D.DEVICES[base], name="t",
                                                               **changes))
        return "t"
    return make


def _weights_at_levels(cfg, level):
    """Offset-encoded weights whose every slice sits at ``level``."""
    u = sum(level << (cfg.cell_bits * s) for s in range(cfg.slices))
    return u - (1 << (cfg.weight_bits - 1))


def test_gaussian_draw_moments():
    z = gauss(mix32(np.arange(400_000, dtype=np.uint64)), R.gauss_multiplier(200.0))
    assert abs(z.mean()) < 1.0
    assert z.std() == pytest.approx(200.0, rel=0.01)
    kurt = np.mean(z.astype(float) ** 4) / z.var() ** 2
    assert kurt == pytest.approx(2.7, abs=0.03)          # Irwin-Hall(4), as documented
    assert np.abs(z).max() <= 3.47 * 200


def test_presets_carry_sources_and_validate():
    for name, m in D.DEVICES.items():
        assert m.name == name and m.summary and m.sources
    wan = D.DEVICES["wan2022"]
    assert not wan.rtl and D.DEVICES["uniform"].rtl and D.DEVICES["ideal"].rtl
    assert wan.sigma_us(0.0) == pytest.approx(0.348)       # aihwkit's fit at G = 0, 1 s
    assert wan.sigma_us(40.0) == pytest.approx(0.348 + 16.030 - 43.853 + 45.393 - 16.815)
    assert wan.sigma_us(20.0, 86400.0) > wan.sigma_us(20.0, 1.0)   # retention spreads
    with pytest.raises(ValueError, match=r"TileConfig\.device must be one of"):
        TileConfig(device="pcm")
    with pytest.raises(ValueError, match=r"TileConfig\.prog_variation \(2\) applies to "
                                         r"device 'uniform' only"):
        TileConfig(device="wan2022", prog_variation=2)
    with pytest.raises(ValueError, match=r"TileConfig\.encoding"):
        TileConfig(encoding="twos")
    with pytest.raises(ValueError, match=r"TileConfig\.adc_calibration"):
        TileConfig(adc_calibration="data")
    with pytest.raises(ValueError, match="on_off must be > 1"):
        dataclasses.replace(wan, on_off=0.5)


@pytest.mark.parametrize("kw", [dict(device="wan2022"), dict(adc_calibration="weights")])
def test_rtl_refuses_functional_only_options(kw):
    from hw.reram import ReramTile
    cfg = TileConfig(rows=4, cols=4, **kw)
    assert cfg.rtl_refusal()
    with pytest.raises(ValueError, match="the RTL tile does not implement"):
        ReramTile(cfg)
    assert TileConfig(rows=4, cols=4).rtl_refusal() is None
    assert TileConfig(rows=4, cols=4, encoding="differential").rtl_refusal() is None


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_relaxation_sigma_follows_the_fit_per_level(variant, level):
    """No pulse error: every cell's error is the relaxation draw, sigma(G(level), 1 s)."""
    name = variant(pulse_sigma=0.0, read_sigma=0.0)
    cfg = TileConfig(rows=128, cols=128, g_frac_bits=8, device=name, seed=3)
    m = ReramModel(cfg)
    m.program(0, np.full((128, 128), _weights_at_levels(cfg, level)))
    err = (m.g - (level << 8)) / 256.0                                  # levels
    dev = cfg.device_model
    want = dev.sigma_us(dev.level_us(2, level)) / dev.step_us(2)
    lo_clip = level == 0 and cfg.g_min_code > -3 * want * 256           # clipped at -G_min
    if not lo_clip:
        assert err.mean() == pytest.approx(0.0, abs=0.01)
        assert err.std() == pytest.approx(want, rel=0.03)
    assert m.g.min() >= cfg.g_min_code and m.g.max() <= cfg.g_max


def test_write_verify_pulses_follow_the_pulse_model(variant):
    """Pulse count: first pulse whose error rounds within verify_tol; a pulse of sigma s
    lands within +-tol codes with probability p, so pulses ~ truncated geometric(p)."""
    name = variant(pulse_sigma=0.25, relax=(), read_sigma=0.0)
    cfg = TileConfig(rows=64, cols=64, g_frac_bits=4, device=name, verify_tol=1, verify_iters=8)
    m = ReramModel(cfg)
    m.program(0, np.zeros((64, 64), np.int64))
    from math import erf, sqrt
    s = 0.25 * 16
    p = erf(1.5 / (s * sqrt(2)))                # |round(N(0, s))| <= 1
    expect = sum((1 - p) ** k for k in range(8))
    assert m.wear.mean() == pytest.approx(expect, rel=0.03)
    ok = m.wear < 8
    assert np.abs(m.g[ok] - (m.levels[ok] << 4)).max() <= 1
    assert m.read_stats()["total_pulses"] == m.wear.sum()


def test_drift_exponent_and_spread_from_many_cells(variant):
    name = variant("wan2022-drift", pulse_sigma=0.0, read_sigma=0.0, drift_nu=0.05,
                   drift_nu_std=0.01, relax=((1.0, (0.2,)),))
    cfg = TileConfig(rows=128, cols=128, g_frac_bits=8, device=name, seed=5)
    m = ReramModel(cfg)
    m.program(0, np.full((128, 128), _weights_at_levels(cfg, 3)))
    dev = cfg.device_model
    g0 = dev.level_us(2, m.g / 256.0)
    m.age(1e4)
    g1 = dev.level_us(2, m.g / 256.0)
    nu = -np.log(g1 / g0) / np.log(1e4)
    assert nu.mean() == pytest.approx(0.05, abs=0.001)
    assert nu.std() == pytest.approx(0.01, rel=0.1)     # code rounding adds a little
    assert m.age_s == 1e4


def test_retention_spread_grows_to_the_published_one_day_fit(variant):
    name = variant(pulse_sigma=0.0, read_sigma=0.0)
    cfg = TileConfig(rows=128, cols=128, g_frac_bits=8, device=name, seed=9)
    m = ReramModel(cfg)
    m.program(0, np.full((128, 128), _weights_at_levels(cfg, 2)))
    dev = cfg.device_model
    err = lambda: (m.g - (2 << 8)) / 256.0
    s1 = err().std()
    m.age(86400.0)
    want = dev.sigma_us(dev.level_us(2, 2), 86400.0) / dev.step_us(2)
    assert err().std() == pytest.approx(want, rel=0.03) and err().std() > s1
    m.age(86400.0)                                    # the same age gives the same cells
    g = m.g.copy()
    m.age(3600.0)
    m.age(86400.0)
    assert np.array_equal(m.g, g)
    with pytest.raises(ValueError, match="t_s must be >= 0"):
        m.age(-1)


def test_read_noise_sigma_grows_with_the_driven_cells(variant):
    """Per-cell read noise of r levels: a column sum driven by n ones has sigma
    r sqrt(n) (x2 cells with differential encoding), before the ADC's rounding."""
    name = variant(pulse_sigma=0.0, relax=(), read_sigma=0.05)
    for enc in ("offset", "differential"):
        cfg = TileConfig(rows=64, cols=64, g_frac_bits=8, adc_bits=12, device=name,
                         encoding=enc)
        m = ReramModel(cfg)
        J, n, S = cfg.input_steps, 400, cfg.slices
        sums = np.full((J, n, 64, S), 100 << 8, np.int64)
        for driven in (16, 64):
            digits = np.zeros((J, n, 64))
            digits[..., :driven] = 1
            w = np.zeros(J, np.int64)
            w[0] = 1
            lanes = mix32(np.arange(64 * S, dtype=np.uint64)).reshape(64, S)
            y = m._convert(sums, lanes, w, False, digits) - 100 * sum(4 ** s for s in range(S))
            r = 0.05 * 40.0 / cfg.device_model.step_us(2)
            sigma = r * np.sqrt(driven * cfg.cells_per_weight_slice)
            want = np.sqrt(sum(16 ** s for s in range(S)) * (sigma ** 2 + 1 / 12))
            assert y.std() == pytest.approx(want, rel=0.05), (enc, driven)


@pytest.mark.parametrize("cell_bits", [1, 2, 4])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (128, 128)])
def test_differential_equals_offset_in_the_ideal_limit(cell_bits, shape):
    rng = np.random.default_rng(cell_bits)
    r, c = shape
    W = rng.integers(-128, 128, (r, c))
    W[0, 0] = -128
    X = rng.integers(-128, 128, (9, r))
    Y = rng.integers(-128, 128, (9, c))
    X[0] = Y[0] = -128
    for enc in ("offset", "differential"):
        cfg = TileConfig(rows=r, cols=c, cell_bits=cell_bits, encoding=enc).ideal()
        for fast in (True, False):
            m = ReramModel(cfg)
            m.fast = fast
            m.program(0, W)
            assert np.array_equal(m.mvm(X), X @ W), (enc, fast)
            assert np.array_equal(m.mvm(Y, transpose=True), Y @ W.T), (enc, fast)
            assert np.array_equal(m.weights_ideal(), W)


def test_differential_costs_twice_the_crossbars():
    off, dif = TileConfig(), TileConfig(encoding="differential")
    assert dif.crossbars == 2 * off.crossbars == 2 * off.slices
    assert dif.crossbar_reads() == 2 * off.crossbar_reads()
    assert dif.mvm_adc_conversions() == off.mvm_adc_conversions()
    assert dif.lossless_adc_bits == off.lossless_adc_bits + 1        # signed ADC
    m = ReramModel(TileConfig(rows=8, cols=8, encoding="differential"))
    m.program(0, np.zeros((8, 8), np.int64))
    assert m.wear.shape == (8, 8, 8) and m.read_stats()["total_pulses"] == m.wear.sum()


@pytest.mark.parametrize("encoding", ["offset", "differential"])
def test_calibrated_range_is_exact_where_the_column_sums_fit(encoding):
    """Gaussian int8 weights in 2-bit cells: the worst-case range needs 9 (offset) or 10
    (differential, signed) ADC bits to be exact; calibrated from the programmed levels,
    one bit less does."""
    rng = np.random.default_rng(0)
    W = np.clip(np.rint(rng.standard_normal((128, 128)) * 32), -127, 127).astype(np.int64)
    X = rng.integers(-128, 128, (16, 128))
    bits = 8 if encoding == "offset" else 9
    base = TileConfig(adc_bits=bits, prog_variation=0, encoding=encoding)
    worst = ReramModel(base)
    worst.program(0, W)
    assert not np.array_equal(worst.mvm(X), X @ W)
    m = ReramModel(dataclasses.replace(base, adc_calibration="weights"))
    m.program(0, W)
    assert not m.adc_shifts(False, base.input_steps).any()
    for fast in (True, False):
        m.fast = fast
        assert np.array_equal(m.mvm(X), X @ W)
        assert np.array_equal(m.mvm(X, transpose=True), X @ W.T)
    assert m.adc_clips == 0


def test_calibrated_range_counts_clipping(variant):
    """Calibrated to the levels (63 cells on: a full 6-bit range); relaxation of 8 uS
    pushes about half the column sums past it: clipped, and counted."""
    name = variant(relax=((1.0, (8.0,)),))
    cfg = TileConfig(rows=63, cols=8, adc_bits=6, g_frac_bits=6, device=name,
                     adc_calibration="weights", cell_bits=1, weight_bits=2)
    m = ReramModel(cfg)
    m.program(0, np.ones((63, 8), np.int64))            # both slices' cells at level 1
    assert not m.adc_shifts(False, cfg.input_steps).any()
    m.mvm(np.ones((4, 63), np.int64))
    assert 0 < m.adc_clips < 4 * cfg.input_steps * 8 * cfg.slices


def test_gaussian_devices_are_deterministic_and_seeded():
    cfg = TileConfig(rows=16, cols=16, device="wan2022", encoding="differential")
    W = np.random.default_rng(0).integers(-128, 128, (16, 16))
    X = np.random.default_rng(1).integers(-128, 128, (5, 16))
    runs = []
    for seed in (1, 1, 2):
        m = ReramModel(dataclasses.replace(cfg, seed=seed))
        m.program(0, W)
        runs.append((m.g.copy(), m.mvm(X)))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_input_digits_schedule_is_shared():
    cfg = TileConfig(encoding="differential")
    x = np.arange(-128, 128)
    assert sum(d * w for d, w in input_digits(cfg, x)).tolist() == x.tolist()


def _codes(cfg, v, n_out=64):
    """Every ADC of one direction converting the inputs ``v`` (LSB units): codes
    ``(len(v), n_out, slices)``, and the model."""
    m = ReramModel(cfg)
    z = torch.from_numpy(np.asarray(v, np.float32)[:, None, None]).expand(len(v), n_out,
                                                                         cfg.slices)
    return m.adc_codes(z.contiguous(), False).numpy(), m


def test_adc_thresholds_follow_the_static_dnl_draws():
    cfg = TileConfig(rows=4, cols=64, cell_bits=2, weight_bits=4, adc_bits=4,
                     adc_dnl_mlsb=300, prog_variation=0)
    v = np.linspace(-2.0, 17.0, 6000)
    codes, m = _codes(cfg, v)
    _, thr = m._adc_errors(False, 64)
    assert 0.25 < thr[..., 1:-1].std() < 0.3 and np.abs(thr).max() <= 0.45    # clipped draws
    lo, hi = cfg.adc_code_range
    for o in (0, 17, 63):
        for s in range(cfg.slices):
            t = np.arange(lo + 1, hi + 1) - 0.5 + thr[o, s, 1:hi - lo + 1]
            want = lo + np.searchsorted(t, v.astype(np.float32), side="right")
            assert np.array_equal(codes[:, o, s], want), (o, s)
    assert m.adc_clips > 0                     # the ramp runs past both ends
    assert TileConfig(adc_dnl_mlsb=1).rtl_refusal()


def test_adc_offset_and_comparator_noise_statistics():
    cfg = TileConfig(rows=4, cols=128, cell_bits=2, weight_bits=8, adc_bits=9,
                     adc_offset_mlsb=1500, prog_variation=0)
    codes, m = _codes(cfg, [100.0], n_out=128)
    offset, _ = m._adc_errors(False, 128)
    assert offset.std() == pytest.approx(1.5, rel=0.08) and abs(offset.mean()) < 0.2
    assert np.array_equal(codes[0], np.floor(np.float32(100.0) + offset + np.float32(0.5)))
    cfg = dataclasses.replace(cfg, adc_offset_mlsb=0, adc_noise_mlsb=2000)
    codes, _ = _codes(cfg, np.full(200, 100.0), n_out=128)
    assert codes.std() == pytest.approx(np.sqrt(4 + 1 / 12), rel=0.03)
    assert abs(codes.mean() - 100.0) < 0.05


def test_adc_nonidealities_reach_the_mvm():
    """Through a whole MVM, against the same lossy ADC without the option: each option
    changes the result, deterministically for the same seed (the threshold errors only
    where inputs fall between codes: an exact integer sum never crosses a threshold
    moved by less than half an LSB, so a lossless ADC is immune to them)."""
    rng = np.random.default_rng(3)
    W = rng.integers(-128, 128, (32, 16))
    X = rng.integers(-128, 128, (8, 32))
    outs = {}
    for kw in ({}, dict(adc_offset_mlsb=700), dict(adc_dnl_mlsb=200), dict(adc_noise_mlsb=500)):
        cfg = TileConfig(rows=32, cols=16, prog_variation=0, adc_bits=5, **kw)
        runs = []
        for _ in range(2):
            m = ReramModel(cfg)
            m.program(0, W)
            runs.append(m.mvm(X))
        assert np.array_equal(runs[0], runs[1])
        outs[tuple(kw)] = runs[0]
    for k, y in outs.items():
        if k:
            assert not np.array_equal(y, outs[()]), k
    cfg = TileConfig(rows=32, cols=16, prog_variation=0, adc_dnl_mlsb=300)
    m = ReramModel(cfg)
    m.program(0, W)
    assert np.array_equal(m.mvm(X), X @ W)                 # lossless: immune to DNL


def test_every_option_names_a_legal_verilog_module():
    import re
    for dev in D.DEVICES:
        for enc in ("offset", "differential"):
            for cal in ("worst", "weights"):
                cfg = TileConfig(rows=4, cols=4, device=dev, encoding=enc, adc_calibration=cal)
                assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", cfg.name), cfg.name
    names = {TileConfig(device=d).name for d in D.DEVICES}
    assert len(names) == len(D.DEVICES)
    for bad in ("Wan", "a_b", "a--b", "-a", "a:b"):
        with pytest.raises(ValueError, match="lowercase letters and digits"):
            dataclasses.replace(D.DEVICES["wan2022"], name=bad)


def test_register_adds_a_user_model(monkeypatch):
    monkeypatch.setattr(D, "DEVICES", dict(D.DEVICES))
    mine = dataclasses.replace(D.DEVICES["wan2022"], name="my-device", read_sigma=0.02)
    assert D.register(mine) is mine and D.register(mine) is mine
    assert TileConfig(device="my-device").device_model is mine
    with pytest.raises(ValueError, match="already registered"):
        D.register(dataclasses.replace(mine, read_sigma=0.03))


def test_rtl_implements_the_programming_part_of_the_fitted_model():
    from hw.reram import ReramTile
    cfg = TileConfig(rows=2, cols=2, device="wan2022-prog")
    assert cfg.rtl_refusal() is None and cfg.g_signed
    ReramTile(cfg).elaborate(None)
    a, b = D.DEVICES["wan2022"], D.DEVICES["wan2022-prog"]
    assert a.relax == b.relax and a.pulse_sigma == b.pulse_sigma and b.read_sigma == 0
