"""Seeded synthetic science workloads with physical structure; tokens are stations.

Every generator returns ``(series, covariates, coords)``: the target ``series[time,
station]``, covariates ``[time, station, k]`` known at each time step (may be empty), and
station coordinates ``[station, 2]`` in km. :mod:`sw.data` turns them into model inputs.
Spatial correlation everywhere comes from a squared-exponential kernel over station
distance (Cholesky-factored), so neighbouring stations share weather.
"""

from __future__ import annotations

import numpy as np

__all__ = ["APPS", "generate"]


def _coords(rng, n: int, extent: float = 500.0) -> np.ndarray:
    return rng.uniform(0.0, extent, (n, 2))


def _spatial_factor(coords: np.ndarray, length_km: float) -> np.ndarray:
    """Cholesky factor of an RBF covariance over stations (unit variance)."""
    d2 = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    cov = np.exp(-d2 / (2 * length_km ** 2)) + 1e-6 * np.eye(len(coords))
    return np.linalg.cholesky(cov)


def _ar1_field(rng, steps: int, factor: np.ndarray, phi: float) -> np.ndarray:
    """Spatially correlated AR(1) anomalies, unit stationary variance."""
    n = factor.shape[0]
    out = np.empty((steps, n))
    x = factor @ rng.standard_normal(n)
    scale = np.sqrt(1 - phi ** 2)
    for t in range(steps):
        x = phi * x + scale * (factor @ rng.standard_normal(n))
        out[t] = x
    return out


def swe(rng, steps: int, stations: int):
    """Snow water equivalent (mm) from a degree-day snow model.

    Daily temperature: annual cycle, lapse rate of 6.5 K/km over station elevation, and
    correlated AR(1) weather. Precipitation: a correlated storm field, positive where a
    latent Gaussian exceeds a threshold, exponentially distributed amounts. Snow
    accumulates when T < 0 degC and melts at 3 mm/K/day above it.
    """
    coords = _coords(rng, stations)
    elev = rng.uniform(0.5, 3.0, stations)                           # km
    t = np.arange(steps)
    season = -10.0 * np.cos(2 * np.pi * t / 365.0)[:, None]          # coldest at t = 0
    fac = _spatial_factor(coords, 150.0)
    temp = 8.0 + season - 6.5 * elev[None] + 4.0 * _ar1_field(rng, steps, fac, 0.8)
    storm = _ar1_field(rng, steps, fac, 0.6)
    precip = np.where(storm > 0.7, rng.exponential(6.0, (steps, stations)) * storm, 0.0)
    snow = np.zeros((steps, stations))
    s = np.zeros(stations)
    for k in range(steps):
        s = s + np.where(temp[k] < 0.0, precip[k], 0.0)
        s = np.maximum(0.0, s - 3.0 * np.maximum(temp[k], 0.0))
        snow[k] = s
    cov = np.stack([temp, precip, np.broadcast_to(elev, (steps, stations))], axis=-1)
    return snow, cov, coords


def _advected_field(rng, steps: int, coords: np.ndarray, length_km: float, phi: float,
                    shift: np.ndarray, features: int = 96) -> np.ndarray:
    """AR(1) anomalies with an RBF spatial kernel (``length_km``) in a frame that moves by
    ``shift[t]`` km (``[time, 2]``), sampled at the stations: ``features`` random Fourier
    features of the kernel, each with its own AR(1) amplitudes; unit stationary variance.
    In the moving frame it is the field of :func:`_ar1_field`; at a station the anomaly
    upstream arrives ``distance / speed`` later."""
    k = rng.normal(0.0, 1.0 / length_km, (features, 2))                   # rad/km
    scale = np.sqrt(1 - phi ** 2)
    amp = rng.standard_normal((2, features))
    out = np.empty((steps, len(coords)))
    for t in range(steps):
        amp = phi * amp + scale * rng.standard_normal((2, features))
        arg = (coords - shift[t]) @ k.T                                   # (station, feature)
        out[t] = (np.cos(arg) @ amp[0] + np.sin(arg) @ amp[1]) / np.sqrt(features)
    return out


def weather(rng, steps: int, stations: int, flow_kmh: float = 0.0):
    """Hourly air temperature (degC): diurnal and seasonal cycles, elevation lapse rate,
    and spatially correlated synoptic anomalies that persist for days.

    ``flow_kmh`` > 0 carries the anomalies across the stations with a mean (steering) flow
    of that speed, whose heading veers slowly (+-0.5 rad over about 10 days), so a
    station's next hours are upstream stations' recent ones; 0 keeps them in place."""
    coords = _coords(rng, stations)
    elev = rng.uniform(0.0, 2.0, stations)
    h = np.arange(steps)
    diurnal = 5.0 * np.sin(2 * np.pi * (h - 9) / 24.0)[:, None]
    seasonal = 10.0 * np.sin(2 * np.pi * h / (24.0 * 365.0))[:, None]
    if flow_kmh:
        heading = 0.5 * np.sin(2 * np.pi * h / 240.0)
        shift = np.cumsum(flow_kmh * np.stack([np.cos(heading), np.sin(heading)], -1), 0)
        anomaly = 3.0 * _advected_field(rng, steps, coords, 200.0, 0.97, shift)
    else:
        anomaly = 3.0 * _ar1_field(rng, steps, _spatial_factor(coords, 200.0), 0.97)
    temp = 12.0 + seasonal + diurnal * (1.0 - 0.2 * elev[None]) - 6.5 * elev[None] + anomaly
    hour = np.broadcast_to(np.stack([np.sin(2 * np.pi * h / 24), np.cos(2 * np.pi * h / 24)],
                                    -1)[:, None, :], (steps, stations, 2))
    return temp, hour.copy(), coords


def wind(rng, steps: int, stations: int):
    """Hourly wind speed (m/s) from a gust field advected across the domain.

    The field is a sum of plane waves moving with a slowly veering mean wind, plus a
    correlated AR(1) turbulent part; speed is the magnitude of mean wind plus field.
    """
    coords = _coords(rng, stations)
    heading = 0.3 * np.sin(2 * np.pi * np.arange(steps) / 500.0)
    u = 8.0 * np.cos(heading)[:, None]                                  # m/s, eastward
    v = 8.0 * np.sin(heading)[:, None]
    field = np.zeros((steps, stations))
    for _ in range(6):
        k = rng.normal(0.0, 2 * np.pi / 150.0, 2)                       # rad/km
        amp, phase = rng.uniform(1.0, 3.0), rng.uniform(0, 2 * np.pi)
        shift_x = np.cumsum(u[:, 0]) * 3.6                              # km travelled
        shift_y = np.cumsum(v[:, 0]) * 3.6
        arg = k[0] * (coords[None, :, 0] - shift_x[:, None]) + k[1] * (coords[None, :, 1]
                                                                       - shift_y[:, None])
        field += amp * np.sin(arg + phase)
    turb = 1.5 * _ar1_field(rng, steps, _spatial_factor(coords, 50.0), 0.9)
    speed = np.sqrt((u + field + turb) ** 2 + v ** 2)
    return speed, np.stack([np.broadcast_to(u, speed.shape), np.broadcast_to(v, speed.shape)],
                           -1).copy(), coords


def epidemic(rng, steps: int, stations: int):
    """Daily deaths per county from a metapopulation SIR model with mobility coupling.

    Counties exchange infection pressure through a gravity model (population product over
    squared distance); transmission has a seasonal cycle and random local interventions;
    immunity wanes after about 180 days (SIRS), so waves recur instead of burning out.
    Deaths follow infections with a fixed infection-fatality ratio and delay, Poisson
    sampled.
    """
    coords = _coords(rng, stations, extent=800.0)
    pop = np.exp(rng.normal(11.0, 1.0, stations))
    d2 = ((coords[:, None] - coords[None]) ** 2).sum(-1) + 25.0
    grav = (pop[:, None] * pop[None]) / d2
    np.fill_diagonal(grav, 0.0)
    mob = 0.02 * grav / grav.sum(1, keepdims=True)                      # share of contacts
    S, I, R = pop.copy(), np.zeros(stations), np.zeros(stations)
    seeds = rng.choice(stations, size=max(1, stations // 8), replace=False)
    I[seeds] = 20.0
    S -= I
    gamma, omega, ifr, delay = 1 / 7.0, 1 / 180.0, 0.006, 14
    new_inf = np.zeros((steps + delay, stations))
    for t in range(steps):
        beta = 0.28 * (1 + 0.25 * np.cos(2 * np.pi * t / 365.0))
        beta = beta * np.where(rng.random(stations) < 0.01, 0.5, 1.0)
        prev = I / pop
        force = beta * ((1 - mob.sum(1)) * prev + mob @ prev)
        inf = np.minimum(S, rng.poisson(np.maximum(S * force, 0.0)))
        rec, wane = gamma * I, omega * R
        S, I, R = S - inf + wane, I + inf - rec, R + rec - wane
        I[rng.random(stations) < 0.002] += 5.0                          # importations
        new_inf[t + delay] = inf
    deaths = rng.poisson(ifr * new_inf[:steps]).astype(float)
    return deaths, np.zeros((steps, stations, 0)), coords


APPS = {"swe": swe, "weather": weather, "wind": wind, "epidemic": epidemic}


def generate(app: str, *, steps: int, stations: int, seed: int, flow_kmh: float = 0.0):
    """``(series, covariates, coords)`` of ``app``; ``flow_kmh``: weather's mean flow."""
    if app not in APPS:
        raise ValueError(f"unknown app {app!r}; choose one of {sorted(APPS)}")
    if flow_kmh and app != "weather":
        raise ValueError(f"flow_kmh applies to the weather app, not {app!r}")
    rng = np.random.default_rng(seed)
    series, cov, coords = APPS[app](rng, steps, stations, **(
        {"flow_kmh": flow_kmh} if flow_kmh else {}))
    return (series.astype(np.float64), np.asarray(cov, np.float64), coords)
