"""Forecasting baselines every quality table reports next to the transformer.

All three predict the same target as the model (the next step of every station, in the
normalised units of :func:`sw.data.load`), so their test MSE compares directly with a
run's ``test_mse``:

* **mean**: the training mean (0 in normalised units); its MSE is the test split's
  spread around it, about 1.0;
* **persistence**: each station's last observed value (for every step of the horizon);
* **ridge**: one linear model over every station's recent values (the last ``lags`` steps
  of all stations, plus an intercept) predicting all stations (and steps) at once, fitted on the
  training split; the penalty is chosen on the validation split from a fixed grid, then
  the model is refitted on the training split alone.

A transformer that does not beat persistence and ridge has learned nothing spatial.
"""

from __future__ import annotations

import numpy as np

from sw.data import Data, DataError

__all__ = ["ALPHAS", "baselines", "persistence", "ridge"]

#: Ridge penalties tried (on standardised features).
ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


def _need_lags(data: Data) -> int:
    if not data.lags:
        raise DataError(f"{data.name}: the baselines need the target's past values as "
                        "features (built-in apps and CSV/text series have them; an NPZ with "
                        "its own X does not)")
    return data.lags


def _raw_last(data: Data, X: np.ndarray) -> np.ndarray:
    """The previous step's target per station, in the target's normalised units."""
    f = X.shape[-1] - 1
    raw = X[..., -1].astype(np.float64) * data.x_std[f] + data.x_mean[f]
    return (raw - data.y_mean) / data.y_std


def _like_y(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    return pred if y.ndim == pred.ndim else np.broadcast_to(pred[..., None], y.shape)


def persistence(data: Data) -> float:
    """Test MSE of predicting each station's last value (for every step ahead)."""
    _need_lags(data)
    pred = _like_y(_raw_last(data, data.test.X), data.test.y)
    return float(np.mean((pred - data.test.y) ** 2))


def _design(X: np.ndarray, lags: int) -> np.ndarray:
    """(time, stations * lags): every station's last ``lags`` values."""
    return X[:, :, -lags:].reshape(len(X), -1).astype(np.float64)


def _fit(Z: np.ndarray, Y: np.ndarray, alpha: float):
    zm, ym = Z.mean(axis=0), Y.mean(axis=0)
    Zc, Yc = Z - zm, Y - ym
    W = np.linalg.solve(Zc.T @ Zc + alpha * len(Z) * np.eye(Z.shape[1]), Zc.T @ Yc)
    return lambda Zn: (Zn - zm) @ W + ym


def ridge(data: Data, lags: int | None = None, alphas=ALPHAS) -> dict:
    """Test MSE of the ridge baseline, with the chosen penalty and lags."""
    lags = min(lags or _need_lags(data), _need_lags(data))
    Ztr, Zva, Zte = (_design(s.X, lags) for s in (data.train, data.val, data.test))
    flat = lambda y: y.reshape(len(y), -1)                   # noqa: E731 (every station, step)
    val = {}
    for a in alphas:
        pred = _fit(Ztr, flat(data.train.y), a)
        val[a] = float(np.mean((pred(Zva) - flat(data.val.y)) ** 2))
    best = min(val, key=val.get)
    pred = _fit(Ztr, flat(data.train.y), best)
    return {"test_mse": float(np.mean((pred(Zte) - flat(data.test.y)) ** 2)), "alpha": best,
            "lags": lags, "val_mse": val[best]}


def baselines(data: Data) -> dict:
    """The three baselines' test MSE on ``data`` (see the module docstring)."""
    r = ridge(data)
    return {"mean": float(np.mean(data.test.y.astype(np.float64) ** 2)),
            "persistence": persistence(data), "ridge": r["test_mse"],
            "ridge_alpha": r["alpha"], "ridge_lags": r["lags"]}
