"""Data for the spatial-attention transformer: ``X[time, station, feature] -> y[time, station]``.

Sources: the four built-in synthetic apps (:mod:`sw.data.synthetic`), a numeric matrix in a
text/CSV file (rows are time steps, columns are stations; forecast each station from a
history window), or an NPZ file holding ``X`` and ``y``. Splits are chronological
(train, then validation, then test); normalisation statistics come from train only.
A malformed file raises :class:`DataError` naming the file (and line) at fault.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .synthetic import APPS, generate

__all__ = ["DataConfig", "DataError", "Split", "Data", "load", "load_matrix", "load_npz",
           "windowed", "APPS"]

#: Apps whose target is heavy-tailed count data: modelled as log1p(counts).
LOG_TARGET = {"epidemic"}


class DataError(ValueError):
    """A data file or data configuration that cannot be used."""


@dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is cut.

    ``app`` names a built-in generator (``swe``, ``weather``, ``wind``, ``epidemic``);
    ``path`` a user file (``.npz``, else a text/CSV matrix), which takes precedence.
    ``window`` lagged target values become features of each station; ``horizon`` steps
    ahead are predicted (``y[t]`` holds steps ``t .. t + horizon - 1`` of every station, a
    ``[time, station, horizon]`` array when ``horizon > 1``; series inputs only);
    ``train``/``val`` are the chronological fractions (test gets the rest).
    ``flow_kmh`` (weather only): the speed of the mean flow that carries the synoptic
    anomalies across the stations (:func:`sw.data.synthetic.weather`; 0: they stay in place).
    """
    app: str = "wind"
    path: str | None = None
    steps: int = 1500
    stations: int = 32
    window: int = 12
    horizon: int = 1
    train: float = 0.7
    val: float = 0.15
    seed: int = 0
    flow_kmh: float = 0.0

    def __post_init__(self):
        if self.path is None and self.app not in APPS:
            raise DataError(f"DataConfig.app must be one of {sorted(APPS)}, not {self.app!r}")
        for name in ("steps", "stations", "window", "horizon"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise DataError(f"DataConfig.{name} must be a positive integer, not {v!r}")
        if not (0 < self.train < 1 and 0 < self.val < 1 and self.train + self.val < 1):
            raise DataError(f"DataConfig.train/val must be fractions with train + val < 1, "
                            f"not {self.train}/{self.val}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) \
                or not 0 <= self.seed < 2 ** 32:
            raise DataError(f"DataConfig.seed must be an integer in [0, 2**32), not {self.seed!r}")
        f = self.flow_kmh
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f < math.inf:
            raise DataError(f"DataConfig.flow_kmh must be a finite number >= 0, not {f!r}")
        if f and (self.path is not None or self.app != "weather"):
            raise DataError("DataConfig.flow_kmh applies to the built-in weather app only, not "
                            f"{self.path or self.app!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Split:
    X: np.ndarray          # (time, station, feature), float32, normalised
    y: np.ndarray          # (time, station), float32, normalised


@dataclass
class Data:
    train: Split
    val: Split
    test: Split
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    name: str
    lags: int | None = None    # the last ``lags`` features are the target's past values
                               # (oldest first; the last one is the previous step), or None

    @property
    def n_features(self) -> int:
        return self.train.X.shape[-1]

    @property
    def stations(self) -> int:
        return self.train.X.shape[1]

    @property
    def horizon(self) -> int:
        """Steps ahead each sample predicts (the last axis of ``y`` when above 1)."""
        return self.train.y.shape[2] if self.train.y.ndim == 3 else 1


def windowed(series: np.ndarray, covariates: np.ndarray | None, window: int,
             horizon: int = 1):
    """``X[t] = [covariates[t], series[t-window .. t-1]]`` per station and ``y[t] =
    series[t]`` (``horizon`` 1), or ``series[t .. t+horizon-1]`` as a last axis."""
    T, S = series.shape
    if T < window + horizon:
        raise DataError(f"{T} time steps cannot fill a history window of {window} and a "
                        f"horizon of {horizon}")
    n = T - window - horizon + 1
    lags = np.lib.stride_tricks.sliding_window_view(series, window, axis=0)[:n]  # (n, S, w)
    parts = [lags]
    if covariates is not None and covariates.shape[-1]:
        parts.insert(0, covariates[window:window + n])
    if horizon == 1:
        y = series[window:]
    else:
        y = np.lib.stride_tricks.sliding_window_view(series[window:], horizon, axis=0)  # (n, S, H)
    return np.concatenate(parts, axis=-1), np.ascontiguousarray(y)


def load_matrix(path: Path) -> np.ndarray:
    """A numeric matrix from text: one time step per line, stations separated by commas or
    whitespace; an optional all-text header line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    rows, width = [], None
    for no, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = [f.strip() for f in (text.split(",") if "," in text else text.split())]
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not rows and width is None and all(not _is_number(f) for f in fields):
                width = len(fields)          # header line
                continue
            bad = next(f for f in fields if not _is_number(f))
            raise DataError(f"{path}:{no}: cannot parse {bad!r} as a number") from None
        if width is None:
            width = len(values)
        if len(values) != width:
            raise DataError(f"{path}:{no}: expected {width} values, found {len(values)} "
                            "(ragged rows)")
        for col, v in enumerate(values):
            if not math.isfinite(v):
                raise DataError(f"{path}:{no}: column {col + 1} is {v} (NaN and inf are not allowed)")
        rows.append(values)
    if not rows:
        raise DataError(f"{path}: no data (the file is empty)")
    return np.asarray(rows, np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"X", "y"} - set(z.files)
            if missing:
                raise DataError(f"{path}: missing array(s) {sorted(missing)}; found {z.files}")
            X, y = np.asarray(z["X"], np.float64), np.asarray(z["y"], np.float64)
    except DataError:
        raise
    except Exception as exc:               # zipfile/pickle/format errors from numpy
        raise DataError(f"{path}: not a readable NPZ file ({exc})") from None
    if X.ndim != 3 or y.ndim != 2 or X.shape[:2] != y.shape:
        raise DataError(f"{path}: X must be [time, station, feature] and y [time, station] "
                        f"with matching time and station; got X{X.shape}, y{y.shape}")
    for key, arr in (("X", X), ("y", y)):
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            raise DataError(f"{path}: {key}{tuple(int(i) for i in bad[0])} is {arr[tuple(bad[0])]}"
                            " (NaN and inf are not allowed)")
    return X, y


def _cut(n: int, cfg: DataConfig, source: str) -> tuple[int, int]:
    n_train, n_val = int(n * cfg.train), int(n * cfg.val)
    if min(n_train, n_val, n - n_train - n_val) < 1:
        raise DataError(f"{source}: {n} usable time steps are too few to split "
                        f"{cfg.train:.0%}/{cfg.val:.0%}/rest into non-empty parts")
    return n_train, n_train + n_val


def load(cfg: DataConfig) -> Data:
    """Build normalised chronological splits for ``cfg``."""
    if cfg.path is not None:
        path = Path(cfg.path)
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        if path.suffix == ".npz":
            if cfg.horizon != 1:
                raise DataError(f"{path}: DataConfig.horizon applies to series inputs; an "
                                "NPZ brings its own targets y")
            X, y = load_npz(path)
        else:
            series = load_matrix(path)
            if len(series) <= cfg.window + cfg.horizon + 1:
                raise DataError(f"{path}: {len(series)} time steps; a window of {cfg.window} "
                                f"and a horizon of {cfg.horizon} need at least "
                                f"{cfg.window + cfg.horizon + 2}")
            X, y = windowed(series, None, cfg.window, cfg.horizon)
        name = path.name
        lags = None if path.suffix == ".npz" else cfg.window
    else:
        series, cov, _ = generate(cfg.app, steps=cfg.steps, stations=cfg.stations, seed=cfg.seed,
                                  flow_kmh=cfg.flow_kmh)
        if cfg.app in LOG_TARGET:
            series = np.log1p(series)
        X, y = windowed(series, cov, cfg.window, cfg.horizon)
        name = cfg.app
        lags = cfg.window
    a, b = _cut(len(X), cfg, name)
    x_mean = X[:a].mean(axis=(0, 1))
    x_std = X[:a].std(axis=(0, 1))
    x_std = np.where(x_std > 1e-12, x_std, 1.0)
    y_mean, y_std = float(y[:a].mean()), float(y[:a].std()) or 1.0
    if lags:
        # the lags are past values of the target: normalised in the target's units, so the
        # last one is the previous value of y as the model and the baselines see it
        x_mean[-lags:], x_std[-lags:] = y_mean, y_std

    def split(lo, hi):
        return Split(((X[lo:hi] - x_mean) / x_std).astype(np.float32),
                     ((y[lo:hi] - y_mean) / y_std).astype(np.float32))

    return Data(split(0, a), split(a, b), split(b, len(X)), x_mean, x_std, y_mean, y_std, name,
                lags)
