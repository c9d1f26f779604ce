"""Data: synthetic apps with physical structure, user-file loaders, splits, errors."""

import numpy as np
import pytest

from sw.data import DataConfig, DataError, load, load_matrix, windowed
from sw.data.synthetic import generate


@pytest.mark.parametrize("app", ["swe", "weather", "wind", "epidemic"])
def test_apps_are_deterministic_and_normalised_on_train(app):
    cfg = DataConfig(app=app, steps=400, stations=10, window=6)
    a, b = load(cfg), load(cfg)
    np.testing.assert_array_equal(a.train.X, b.train.X)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    other = load(DataConfig(app=app, steps=400, stations=10, window=6, seed=1))
    assert not np.array_equal(a.train.y, other.train.y)
    n = 400 - 6
    assert len(a.train.X) == int(n * 0.7) and len(a.val.X) == int(n * 0.15)
    assert len(a.train.X) + len(a.val.X) + len(a.test.X) == n
    assert a.train.X.shape[1:] == (10, a.n_features) and a.train.y.shape[1] == 10
    assert abs(float(a.train.y.mean())) < 1e-5 and abs(float(a.train.y.std()) - 1) < 1e-4
    assert np.all(np.isfinite(a.test.X))


def test_chronological_split_keeps_time_order(tmp_path):
    series = np.arange(60, dtype=float)[:, None] * np.ones((1, 3))
    np.savetxt(tmp_path / "ramp.csv", series, delimiter=",")
    d = load(DataConfig(path=str(tmp_path / "ramp.csv"), window=4))
    raw = lambda s: s.y * d.y_std + d.y_mean          # noqa: E731
    assert raw(d.train).max() < raw(d.val).min() <= raw(d.val).max() < raw(d.test).min()
    # the last lag feature of step t is the value at t-1
    np.testing.assert_allclose(d.train.X[:, :, -1] * d.x_std[-1] + d.x_mean[-1],
                               raw(d.train) - 1, atol=1e-4)


def test_swe_accumulates_below_freezing_and_melts_above():
    snow, cov, _ = generate("swe", steps=730, stations=8, seed=3)
    temp, precip = cov[..., 0], cov[..., 1]
    assert snow.min() >= 0 and snow.max() > 50
    d = np.diff(snow, axis=0)
    warm = temp[1:] > 0.5
    assert np.all(d[warm] <= 1e-9)                       # no accumulation above freezing
    grew = d > 1e-9
    assert np.all(temp[1:][grew] < 0) and np.all(precip[1:][grew] > 0)


def test_weather_has_diurnal_cycle_and_spatial_correlation():
    temp, _, coords = generate("weather", steps=24 * 60, stations=12, seed=2)
    x = temp[:, 0] - temp[:, 0].mean()
    ac = lambda k: float(np.corrcoef(x[:-k], x[k:])[0, 1])  # noqa: E731
    assert ac(24) > ac(12)
    anomalies = temp - temp.mean(0)
    dist = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    corr = np.corrcoef(anomalies.T)
    iu = np.triu_indices(12, 1)
    near = corr[iu][dist[iu] < np.median(dist[iu])].mean()
    far = corr[iu][dist[iu] >= np.median(dist[iu])].mean()
    assert near > far


def test_advected_anomalies_arrive_downstream_after_distance_over_speed():
    from sw.data.synthetic import _advected_field
    steps = 400
    shift = np.stack([40.0 * np.arange(1, steps + 1), np.zeros(steps)], -1)   # 40 km/h east
    coords = np.array([[0.0, 0.0], [200.0, 0.0], [0.0, 200.0]])
    # a frozen pattern (no decay): 200 km downstream, station 1 sees station 0's anomaly
    # exactly 5 hours later; station 2, across the flow, sees another one
    a = _advected_field(np.random.default_rng(0), steps, coords, 200.0, 1.0, shift)
    np.testing.assert_allclose(a[5:, 1], a[:-5, 0], atol=1e-9)
    assert not np.allclose(a[5:, 2], a[:-5, 0], atol=0.1)
    # decaying amplitudes: AR(1) with unit variance at a point, in the moving frame
    still = np.zeros((20000, 2))
    b = _advected_field(np.random.default_rng(1), 20000, coords[:1], 200.0, 0.97, still)[:, 0]
    assert abs(b.var() - 1) < 0.1
    assert abs(float(np.corrcoef(b[:-1], b[1:])[0, 1]) - 0.97) < 0.01


def test_weather_flow_moves_anomalies_and_is_checked():
    still = generate("weather", steps=500, stations=8, seed=4)
    np.testing.assert_array_equal(still[0], generate("weather", steps=500, stations=8, seed=4,
                                                     flow_kmh=0.0)[0])
    moving = generate("weather", steps=500, stations=8, seed=4, flow_kmh=40.0)
    np.testing.assert_array_equal(moving[2], still[2])           # the same stations
    assert not np.allclose(moving[0], still[0])
    d = load(DataConfig(app="weather", steps=400, stations=6, flow_kmh=30))
    assert d.train.X.shape[1:] == (6, d.n_features)
    for bad in (-1.0, float("inf"), float("nan"), True, "40"):
        with pytest.raises(DataError, match=r"DataConfig\.flow_kmh must be"):
            DataConfig(app="weather", flow_kmh=bad)
    with pytest.raises(DataError, match=r"flow_kmh applies to the built-in weather app only, "
                                        r"not 'wind'"):
        DataConfig(app="wind", flow_kmh=10)
    with pytest.raises(ValueError, match="flow_kmh applies to the weather app"):
        generate("swe", steps=50, stations=3, seed=0, flow_kmh=5)


def test_wind_and_epidemic_ranges():
    speed, cov, _ = generate("wind", steps=300, stations=6, seed=0)
    assert speed.min() >= 0 and cov.shape == (300, 6, 2)
    deaths, _, _ = generate("epidemic", steps=300, stations=12, seed=0)
    assert deaths.min() >= 0 and np.all(deaths == np.round(deaths)) and deaths.sum() > 0


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text,match", [
    ("1,2,3\n4,5\n", r"bad\.csv:2: expected 3 values, found 2"),
    ("1,2\n3,nan\n", r"bad\.csv:2: column 2 is nan"),
    ("1 2\n3 inf\n", r"bad\.csv:2: column 2 is inf"),
    ("1,2\nx,3\n", r"bad\.csv:2: cannot parse 'x'"),
    ("", r"bad\.csv: no data"),
    ("# only a comment\n", r"bad\.csv: no data"),
])
def test_malformed_matrix_names_file_and_line(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        load_matrix(write(tmp_path, "bad.csv", text))


def test_header_whitespace_and_too_few_steps(tmp_path):
    m = load_matrix(write(tmp_path, "ok.txt", "a b c\n1 2 3\n4 5 6\n"))
    assert m.shape == (2, 3)
    short = write(tmp_path, "short.csv", "\n".join("1,2" for _ in range(8)))
    with pytest.raises(DataError, match=r"short\.csv: 8 time steps; a window of 12"):
        load(DataConfig(path=str(short), window=12))


def test_npz_loader_and_its_errors(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4, 3)), rng.standard_normal((50, 4))
    np.savez(tmp_path / "ok.npz", X=X, y=y)
    d = load(DataConfig(path=str(tmp_path / "ok.npz")))
    assert d.n_features == 3 and d.stations == 4
    np.savez(tmp_path / "nokey.npz", X=X)
    with pytest.raises(DataError, match=r"nokey\.npz: missing array\(s\) \['y'\]"):
        load(DataConfig(path=str(tmp_path / "nokey.npz")))
    X[7, 1, 2] = np.nan
    np.savez(tmp_path / "nan.npz", X=X, y=y)
    with pytest.raises(DataError, match=r"nan\.npz: X\(7, 1, 2\) is nan"):
        load(DataConfig(path=str(tmp_path / "nan.npz")))
    np.savez(tmp_path / "shape.npz", X=X[:, :, 0], y=y)
    with pytest.raises(DataError, match=r"shape\.npz: X must be"):
        load(DataConfig(path=str(tmp_path / "shape.npz")))


def test_bad_config_names_field():
    with pytest.raises(DataError, match=r"DataConfig\.app"):
        DataConfig(app="tides")
    with pytest.raises(DataError, match=r"DataConfig\.window"):
        DataConfig(window=0)
    with pytest.raises(DataError, match="no such file"):
        load(DataConfig(path="/nonexistent/file.csv"))


def test_windowed_rejects_short_series():
    with pytest.raises(DataError, match="cannot fill a history window"):
        windowed(np.zeros((3, 2)), None, 3)


def test_seeds_are_checked_where_numpy_would_fail():
    """numpy seeds from [0, 2**32); a seed outside fails at the config, naming the field."""
    from sw.train.trainer import TrainConfig
    assert DataConfig(seed=2 ** 32 - 1).seed == TrainConfig(seed=2 ** 32 - 1).seed
    for bad in (-1, 2 ** 32, 1.0, True, "0"):
        with pytest.raises(DataError, match=r"DataConfig\.seed must be an integer in \[0, 2\*"):
            DataConfig(seed=bad)
        with pytest.raises(ValueError, match=r"TrainConfig\.seed must be an integer in \[0, 2\*"):
            TrainConfig(seed=bad)
