"""ReRAM device models: the physics of one cell, with the source of every parameter.

A tile (:class:`hw.reram.TileConfig`) names its device model by ``TileConfig.device``;
the model says how a cell's conductance lands when it is programmed, how it relaxes and
drifts afterwards, how noisy a read is, and how far apart the on and off states are.
The layering follows IBM aihwkit's (tile -> device model -> configuration): the tile
owns the circuit (slicing, DAC, ADC, write-verify loop, encoding), the device model only
the cell.

Units. Device parameters are physical (microsiemens, seconds) as their sources state
them. The tile works in *levels*: a ``cell_bits`` cell has ``L = 2**cell_bits`` levels
``0..L-1`` spread evenly between ``G_min = g_max_us / on_off`` and ``g_max_us``, so one
level step is ``(g_max_us - G_min) / (L - 1)`` microsiemens; :meth:`DeviceModel.step_us`.
A conductance code is a level in fixed point with ``TileConfig.g_frac_bits`` fraction
bits. ``G_min`` itself is removed before the ADC (a reference column of off cells per
slice, ISAAC-style; modelled as exact), so only its noise reaches the result.

Kinds
-----
``ideal``
    No error at all (the reference for every comparison).
``uniform``
    Bounded uniform errors in code units taken from the tile
    (``TileConfig.prog_variation``, ``verify_tol``, ``read_noise``): the original model,
    implemented by the RTL tile and its golden model bit for bit.
``gaussian``
    Conductance-dependent Gaussian errors from measured devices:

    * **programming**: each write-verify pulse lands at ``target + N(0, pulse_sigma)``
      (in level steps); verify accepts within ``TileConfig.verify_tol`` codes, at most
      ``TileConfig.verify_iters`` pulses, so the pulse count is drawn from the model;
    * **relaxation** right after programming (the dominant error after write-verify in
      Wan et al. 2022, Extended Data Fig. 3c-d): ``N(0, sigma(G, t0))`` with ``sigma`` a
      polynomial in ``G / g_max`` (microsiemens), fitted at ``t0 = 1 s``;
    * **retention / drift** at later times ``t`` (functional model only, declared by
      :attr:`DeviceModel.rtl`): the spread grows to ``sigma(G, t)`` by the fits at the
      published times (interpolated in ``log t``), and the mean follows the power law
      ``G(t) = G(t0) (t / t0) ** -nu`` with ``nu ~ N(drift_nu, drift_nu_std)`` per cell;
    * **read noise** per analog read: each cell's conductance fluctuates by
      ``N(0, read_sigma * g_max_us)`` per read, so a column sum sees
      ``sigma = read_sigma * g_max / step * sqrt(sum of digit**2 over driven cells)``;
    * **finite on/off** ratio: the level grid starts at ``G_min``; noise is evaluated at
      the cell's real conductance ``G_min + level * step``.

Programming, relaxation and retention draws come from the tile's counter-based generator
(:mod:`hw.reram.rng`, gateware-friendly: see :func:`hw.reram.rng.gauss_multiplier`);
per-read noise, whose sigma needs a square root per conversion, from numpy's PCG64 seeded
by the tile seed and read counter (:meth:`sw.golden.reram.ReramModel._convert`). Either
way a run is reproducible bit for bit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = ["DeviceModel", "DEVICES", "device_model", "register"]


@dataclass(frozen=True)
class DeviceModel:
    """One cell technology. Polynomials are ascending coefficients (``c0 + c1 x + ...``)
    in microsiemens of ``x = G / g_max_us``; ``sources`` maps each parameter to where its
    number comes from (paper, figure, value) or says it is an assumption."""

    name: str
    kind: str                                   # "ideal" | "uniform" | "gaussian"
    summary: str
    g_max_us: float = 40.0
    on_off: float = 0.0                         # G_max / G_min; 0 = infinite (G_min = 0)
    pulse_sigma: float = 0.0                    # one pulse's error, in level steps
    relax: tuple[tuple[float, tuple[float, ...]], ...] = ()   # ((t_s, poly_us), ...), t ascending
    drift_nu: float = 0.0
    drift_nu_std: float = 0.0
    drift_t0_s: float = 1.0
    read_sigma: float = 0.0                     # per-read cell noise / g_max
    sources: dict = field(default_factory=dict)

    def __post_init__(self):
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", self.name):
            raise ValueError(f"DeviceModel name {self.name!r}: lowercase letters and digits, "
                             "words joined by single '-' (it becomes part of Verilog names)")
        if self.kind not in ("ideal", "uniform", "gaussian"):
            raise ValueError(f"DeviceModel {self.name!r}: kind must be ideal, uniform or "
                             f"gaussian, not {self.kind!r}")
        if self.on_off and self.on_off <= 1:
            raise ValueError(f"DeviceModel {self.name!r}: on_off must be > 1 (or 0 for "
                             f"infinite), not {self.on_off}")
        times = [t for t, _ in self.relax]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError(f"DeviceModel {self.name!r}: relax times must ascend")

    # ---- what the RTL tile implements ------------------------------------------------
    @property
    def rtl(self) -> bool:
        """True where the RTL tile implements this model bit for bit: every model but one
        with per-read Gaussian noise, whose sigma needs a square root per conversion
        (retention and drift, :meth:`sw.golden.reram.ReramModel.age`, are a functional
        model method; the RTL holds the cells as programmed)."""
        return not self.read_sigma

    @property
    def drifts(self) -> bool:
        """True where conductances change after programming (:meth:`sigma_us` grows with
        time or ``drift_nu`` is set): only the functional model ages cells."""
        return self.kind == "gaussian" and (len(self.relax) > 1 or bool(self.drift_nu)
                                            or bool(self.drift_nu_std))

    # ---- physical quantities ----------------------------------------------------------
    def g_min_us(self) -> float:
        return self.g_max_us / self.on_off if self.on_off else 0.0

    def step_us(self, cell_bits: int) -> float:
        """Microsiemens between adjacent levels of a ``cell_bits`` cell."""
        return (self.g_max_us - self.g_min_us()) / ((1 << cell_bits) - 1)

    def level_us(self, cell_bits: int, level):
        """Conductance (microsiemens) of ``level`` (a float or numpy array of levels)."""
        return self.g_min_us() + level * self.step_us(cell_bits)

    def sigma_us(self, g_us, t_s: float | None = None):
        """Standard deviation (microsiemens) of a cell's conductance at ``g_us``, ``t_s``
        seconds after programming (default: the first fitted time). Between fitted times
        the polynomial coefficients are interpolated linearly in ``log t``; before the
        first and after the last the nearest fit holds. Negative fits clip to 0 (as
        aihwkit and CrossSim do)."""
        if not self.relax:
            return 0.0 * g_us
        coef = self._coefficients(t_s)
        x = g_us / self.g_max_us
        s = 0.0 * x
        for c in reversed(coef):
            s = s * x + c
        return s.clip(min=0.0) if hasattr(s, "clip") else max(s, 0.0)

    def _coefficients(self, t_s):
        times = [t for t, _ in self.relax]
        if t_s is None or t_s <= times[0] or len(times) == 1:
            return self.relax[0][1]
        if t_s >= times[-1]:
            return self.relax[-1][1]
        i = next(k for k, t in enumerate(times) if t >= t_s)
        (ta, ca), (tb, cb) = self.relax[i - 1], self.relax[i]
        a = (math.log(t_s) - math.log(ta)) / (math.log(tb) - math.log(ta))
        n = max(len(ca), len(cb))
        ca, cb = tuple(ca) + (0.0,) * (n - len(ca)), tuple(cb) + (0.0,) * (n - len(cb))
        return tuple((1 - a) * x + a * y for x, y in zip(ca, cb))

    def first_time(self) -> float:
        return self.relax[0][0] if self.relax else self.drift_t0_s


_WAN = "Wan et al., 'A compute-in-memory chip based on resistive random-access memory', Nature 608, 2022"
_AIHW = ("IBM aihwkit, aihwkit.inference.noise.reram.ReRamWan2022NoiseModel (4th-order fit "
         "to Wan et al. Extended Data Fig. 3d, g_max reference 40 uS)")

#: wan2022's cell: conductance range, one pulse's error, relaxation fits (sources: wan2022).
_WAN_CELL = dict(g_max_us=40.0, on_off=40.0, pulse_sigma=0.15,
                 relax=((1.0, (0.348, 16.030, -43.853, 45.393, -16.815)),
                        (86400.0, (0.701, 22.086, -50.773, 47.095, -16.458)),
                        (172800.0, (0.782, 20.274, -43.507, 37.062, -11.934))))

DEVICES: dict[str, DeviceModel] = {m.name: m for m in (
    DeviceModel(
        name="ideal", kind="ideal",
        summary="no programming error, relaxation, drift or read noise",
        sources={"all": "reference model: the exact integer product"}),
    DeviceModel(
        name="uniform", kind="uniform",
        summary="bounded uniform errors in code units from the tile (prog_variation, "
                "verify_tol, read_noise); the RTL's model",
        sources={"prog_variation, verify_tol, read_noise":
                 "TileConfig fields; defaults are assumptions documented there"}),
    DeviceModel(
        name="wan2022", kind="gaussian",
        summary="HfOx ReRAM of the NeuRRAM chip: write-verify, conductance-dependent "
                "relaxation (1 s, 1 day, 2 days), ~1 % read noise",
        **_WAN_CELL,
        read_sigma=0.01,
        sources={
            "g_max_us": f"40 uS: the reference conductance of the fit ({_AIHW}); "
                        "CrossSim's RRAMWan model limits G_max to 39.26 uS for the same data",
            "relax": f"sigma(G) after write-verify at 1 s, 1 day, 2 days: {_AIHW}, from {_WAN}, "
                     "Extended Data Fig. 3d (sigma 0.35-2.3 uS over 0-40 uS at 1 s)",
            "read_sigma": "0.01 of g_max per read: aihwkit's documented recommendation for the "
                          "Wan model's short-term read noise ('about 1 %', forward.w_noise)",
            "on_off": "assumption: G_min = 1 uS (on/off 40); the fit covers 0-40 uS",
            "pulse_sigma": "assumption: one incremental SET/RESET pulse lands with sigma 0.15 "
                           "level step, so write-verify takes several pulses per cell, as "
                           "Extended Data Fig. 3b-c show (3f's pulse-count distribution was "
                           "not available to fit)",
            "drift_nu": "0: ReRAM shows no power-law drift of the mean in these data (aihwkit "
                        "models its retention as the growing spread above)",
        }),
    DeviceModel(
        name="wan2022-prog", kind="gaussian",
        summary="wan2022's write-verify and relaxation without its read noise: the part "
                "of the model the RTL tile implements",
        **_WAN_CELL,
        sources={"all": "as wan2022, with read_sigma = 0"}),
    DeviceModel(
        name="wan2022-drift", kind="gaussian",
        summary="wan2022 plus a power-law drift of the mean (nu = 0.005 +- 0.002), for "
                "drift studies",
        **_WAN_CELL,
        drift_nu=0.005, drift_nu_std=0.002, drift_t0_s=1.0, read_sigma=0.01,
        sources={
            "relax, read_sigma, g_max_us, on_off, pulse_sigma": "as wan2022",
            "drift_nu": "assumption: a small power-law decay G(t) = G0 (t/t0)^-nu of the "
                        "PCM form (aihwkit PCMLikeNoiseModel, Nandakumar et al. 2019), with "
                        "an exponent an order of magnitude below PCM's ~0.03-0.06 to "
                        "represent filamentary ReRAM; for sensitivity studies, not a fit",
        }),
)}


def register(model: DeviceModel) -> DeviceModel:
    """Add a device model (a user's own, or a variant of a preset made with
    ``dataclasses.replace``) so that ``TileConfig(device=model.name)`` finds it.
    Registering the same definition again is harmless; another definition under a taken
    name is an error."""
    if not isinstance(model, DeviceModel):
        raise TypeError(f"register takes a DeviceModel, not {model!r}")
    old = DEVICES.get(model.name)
    if old is not None and old != model:
        raise ValueError(f"a different device model is already registered as {model.name!r}")
    DEVICES[model.name] = model
    return model


def device_model(name: str) -> DeviceModel:
    """The device model called ``name``; one error naming the choices otherwise."""
    try:
        return DEVICES[name]
    except KeyError:
        raise ValueError(f"TileConfig.device must be one of {sorted(DEVICES)}, "
                         f"not {name!r}") from None
