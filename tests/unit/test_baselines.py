"""Forecasting baselines (persistence, ridge) and the data they read."""

import numpy as np
import pytest
import torch

from sw.experiments.baselines import baselines, persistence, ridge
from sw.data import DataConfig, DataError, load
from sw.model.transformer import ModelConfig, SpatialTransformer


def test_lags_are_in_target_units_so_the_last_one_is_the_previous_target(tmp_path):
    data = load(DataConfig(app="weather", steps=300, stations=5, window=4))
    assert data.lags == 4
    for split in (data.train, data.val, data.test):
        np.testing.assert_allclose(split.X[1:, :, -1], split.y[:-1], rtol=0, atol=1e-6)
    # persistence is exactly the MSE of y[t-1] as the prediction of y[t]
    y = data.test.y
    assert persistence(data) == pytest.approx(float(np.mean((y[1:] - y[:-1]) ** 2)), rel=0.2)
    pred = data.test.X[:, :, -1].astype(np.float64)
    assert persistence(data) == pytest.approx(float(np.mean((pred - y) ** 2)), rel=1e-9)


def test_ridge_recovers_a_linear_spatial_process(tmp_path):
    # x[t] = M x[t-1] + small noise: every station a linear function of all stations' last
    # values; ridge over the lags must nearly reach the noise floor, persistence must not
    rng = np.random.default_rng(0)
    S, T = 6, 1200
    M = rng.normal(0, 1, (S, S))
    M *= 0.95 / np.abs(np.linalg.eigvals(M)).max()
    x = np.zeros((T, S))
    for t in range(1, T):
        x[t] = M @ x[t - 1] + rng.normal(0, 1.0, S)
    f = tmp_path / "lin.csv"
    np.savetxt(f, x, delimiter=",")
    data = load(DataConfig(path=str(f), window=3))
    r = ridge(data)
    noise = 1.0 / data.y_std ** 2                      # the unpredictable part, normalised
    assert r["test_mse"] == pytest.approx(noise, rel=0.15)
    assert persistence(data) > 1.5 * r["test_mse"]
    b = baselines(data)
    assert b["ridge"] == r["test_mse"] and b["ridge_lags"] == 3 and b["mean"] > b["ridge"]


def test_baselines_need_lags(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, X=np.zeros((50, 3, 2)), y=np.zeros((50, 3)))
    data = load(DataConfig(path=str(f)))
    assert data.lags is None
    with pytest.raises(DataError, match="need the target's past values"):
        baselines(data)


def test_residual_head_adds_the_last_value():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5)
    m = SpatialTransformer(ModelConfig.preset("tiny"), 5, last_value=4).eval()
    plain = SpatialTransformer(ModelConfig.preset("tiny", residual=False), 5, last_value=4).eval()
    plain.load_state_dict(m.state_dict())
    torch.testing.assert_close(m(x), plain(x) + x[..., 4])
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
    torch.testing.assert_close(m(x), x[..., 4])
    assert SpatialTransformer(ModelConfig.preset("tiny"), 5).last_value is None
    with pytest.raises(ValueError, match="last_value feature 5 is not one of 5"):
        SpatialTransformer(ModelConfig.preset("tiny"), 5, last_value=5)
    with pytest.raises(ValueError, match="ModelConfig.residual must be True or False"):
        ModelConfig(residual=1)


def test_run_folders_from_before_the_residual_head_load_without_it():
    from sw.train.trainer import RunConfig
    d = RunConfig().to_dict()
    assert d["model"]["residual"] is True
    del d["model"]["residual"]
    assert RunConfig.from_dict(d).model.residual is False


def test_horizon_predicts_the_next_steps_of_every_station(tmp_path):
    one = load(DataConfig(app="wind", steps=200, stations=4, window=5))
    three = load(DataConfig(app="wind", steps=200, stations=4, window=5, horizon=3))
    assert one.horizon == 1 and one.train.y.ndim == 2
    assert three.horizon == 3 and three.train.y.shape[1:] == (4, 3)
    # y[t, :, h] is the target h steps after y[t]; the inputs are the same windows
    from sw.data import windowed
    series = np.arange(20.0).reshape(10, 2)
    X1, y1 = windowed(series, None, 3)
    X3, y3 = windowed(series, None, 3, 3)
    np.testing.assert_array_equal(X3, X1[:len(X3)])
    np.testing.assert_array_equal(y3[:, :, 0], y1[:len(y3)])
    np.testing.assert_array_equal(y3[0], [[6, 8, 10], [7, 9, 11]])
    n = len(three.train.y)
    for h in range(3):
        np.testing.assert_allclose(three.train.y[:n - h, :, h], three.train.y[h:, :, 0], atol=1e-6)
    torch.manual_seed(0)
    m = SpatialTransformer.for_data(ModelConfig(d_model=8, layers=1, heads=2, ffn=8, reduce=4),
                                    three)
    out = m(torch.from_numpy(three.train.X[:2]))
    assert out.shape == (2, 4, 3)
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
    x = torch.from_numpy(three.train.X[:2])
    torch.testing.assert_close(m(x), x[..., -1:].expand(2, 4, 3))
    b = baselines(three)
    assert b["persistence"] > persistence(one) * 0.5 and b["ridge"] > 0
    with pytest.raises(DataError, match="DataConfig.horizon must be a positive integer"):
        DataConfig(horizon=0)
    f = tmp_path / "d.npz"
    np.savez(f, X=np.zeros((50, 3, 2)), y=np.zeros((50, 3)))
    with pytest.raises(DataError, match="horizon applies to series inputs"):
        load(DataConfig(path=str(f), horizon=2))
