"""MVM fidelity of a ReRAM tile (``hpt fidelity``): device models x encodings x ADC bits x
ADC calibration, and the error's growth with time after programming.

Gaussian weights and inputs are quantized by :func:`sw.device.backends.quantize` (symmetric,
per-tensor scale, the host's one quantizer) and pushed through the tile's model
(:class:`sw.golden.reram.ReramModel`: the RTL's numerics where the RTL implements the
option, the functional model elsewhere). Two relative errors per point, in percent:

* against the float product ``x @ W`` (what the network sees: quantization included);
* against the exact int8 product ``xq @ wq`` (what the tile adds: ADC and device only).

Both are ``100 * ||y - ref|| / ||ref||`` over ``vectors`` input vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from hw.reram import DEVICES, TileConfig
from sw.device.backends import quantize
from sw.golden.reram import ReramModel

__all__ = ["errors", "sweep", "drift", "budget", "plot"]


def _operands(base: TileConfig, vectors: int, seed: int):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((base.rows, base.cols))
    X = rng.standard_normal((vectors, base.rows))
    wq, sw = quantize(torch.from_numpy(W), base.weight_bits)
    xq, sx = quantize(torch.from_numpy(X), base.input_bits)
    return W, X, wq, xq, sw * sx


def errors(cfg: TileConfig, W, X, wq, xq, scale, t_s: float | None = None) -> dict:
    """Relative errors (percent) of one tile against the float and the int8 product,
    with the mean write pulses per cell and the ADC conversions that clipped."""
    model = ReramModel(cfg)
    model.program(0, wq)
    if t_s is not None:
        model.age(t_s)
    y = model.mvm(xq)
    exact = xq @ wq
    ref = X @ W
    return {"vs_float_pct": 100 * float(np.linalg.norm(y * scale - ref) / np.linalg.norm(ref)),
            "vs_int8_pct": 100 * float(np.linalg.norm(y - exact) / np.linalg.norm(exact)),
            "pulses_per_cell": float(model.wear.mean()), "adc_clips": model.adc_clips}


def sweep(base: TileConfig | None = None, devices=("ideal", "uniform", "wan2022"),
          encodings=("offset", "differential"), adc_bits=range(4, 13),
          calibrations=("worst", "weights"), cell_bits=(1, 2, 4), vectors: int = 64,
          seed: int = 0, progress=None) -> dict:
    """Every device x encoding x calibration x cell width x ADC resolution on ``base``
    (its other fields: crossbar size, DAC, write-verify, seed...). ``seed`` draws the
    Gaussian W and x."""
    base = base or TileConfig()
    W, X, wq, xq, scale = _operands(base, vectors, seed)
    out = {"base": base.to_dict(), "vectors": vectors, "seed": seed,
           "adc_bits": list(adc_bits), "units": "percent", "series": [],
           "devices": {d: {"summary": DEVICES[d].summary, "sources": DEVICES[d].sources}
                       for d in devices}}
    out["int8_floor_pct"] = errors(base.ideal(), W, X, wq, xq, scale)["vs_float_pct"]
    total = len(devices) * len(encodings) * len(calibrations) * len(cell_bits)
    done = 0
    for dev in devices:
        for enc in encodings:
            for cal in calibrations:
                for cb in cell_bits:
                    pts = []
                    for a in adc_bits:
                        cfg = base.changed(device=dev, encoding=enc, adc_calibration=cal,
                                           cell_bits=cb, adc_bits=a)
                        pts.append(errors(cfg, W, X, wq, xq, scale))
                    out["series"].append({
                        "device": dev, "encoding": enc, "calibration": cal, "cell_bits": cb,
                        "lossless_adc_bits": base.changed(cell_bits=cb, encoding=enc,
                                                          device=dev).lossless_adc_bits,
                        **{k: [p[k] for p in pts] for k in pts[0]}})
                    done += 1
                    if progress:
                        progress(done, total)
    return out


def budget(base: TileConfig | None = None, devices=("wan2022",),
           encodings=("offset", "differential"), vectors: int = 64, seed: int = 0) -> dict:
    """Where a Gaussian device's error comes from, at a lossless ADC: the whole model, its
    programming part alone (write-verify and relaxation), its read noise alone, and the
    programmed weights' own error ``||W_eff - W|| / ||W||`` (the conductances read back as
    weights, ``sum_s g_s 2**(s cell_bits)``: the number an analog-weight simulator such as
    aihwkit reports as weight noise), in percent."""
    import dataclasses

    from hw.reram.device import register
    from sw.golden.reram import effective

    base = base or TileConfig()
    W, X, wq, xq, scale = _operands(base, vectors, seed)
    out = {"units": "percent", "rows": []}
    for dev in devices:
        m = DEVICES[dev]
        if m.kind != "gaussian":
            raise ValueError(f"budget: device {dev!r} is not a Gaussian device model")
        parts = {"all": m,
                 "programming + relaxation only": dataclasses.replace(
                     m, name=f"{dev}-part-prog", read_sigma=0.0),
                 "read noise only": dataclasses.replace(
                     m, name=f"{dev}-part-read", pulse_sigma=0.0, relax=())}
        for enc in encodings:
            for part, model in parts.items():
                register(model)
                cfg = base.changed(device=model.name, encoding=enc, adc_calibration="worst")
                cfg = cfg.changed(adc_bits=cfg.lossless_adc_bits)
                e = errors(cfg, W, X, wq, xq, scale)
                tile = ReramModel(cfg)
                tile.program(0, wq)
                g = effective(cfg, tile.g) / float(1 << cfg.g_frac_bits)
                w_eff = (g * 2.0 ** (cfg.cell_bits * np.arange(cfg.slices))).sum(-1) \
                    - (0 if cfg.differential else 1 << (cfg.weight_bits - 1))
                out["rows"].append({
                    "device": dev, "encoding": enc, "part": part, **e,
                    "weight_error_pct": 100 * float(np.linalg.norm(w_eff - wq)
                                                    / np.linalg.norm(wq))})
    return out


def drift(base: TileConfig | None = None, devices=("wan2022", "wan2022-drift"),
          encodings=("offset", "differential"), times=(1.0, 60.0, 3600.0, 86400.0,
                                                       172800.0, 2.592e6, 3.15e7),
          vectors: int = 64, seed: int = 0) -> dict:
    """Error against time after programming (seconds) for drifting device models, at a
    lossless ADC so the device alone shows."""
    base = base or TileConfig()
    W, X, wq, xq, scale = _operands(base, vectors, seed)
    out = {"times_s": list(times), "units": "percent", "series": []}
    for dev in devices:
        for enc in encodings:
            cfg = base.changed(device=dev, encoding=enc, adc_calibration="worst")
            cfg = cfg.changed(adc_bits=cfg.lossless_adc_bits)
            pts = [errors(cfg, W, X, wq, xq, scale, t_s=t) for t in times]
            out["series"].append({"device": dev, "encoding": enc,
                                  **{k: [p[k] for p in pts] for k in pts[0]}})
    return out


#: Line style and marker per (encoding, ADC calibration); colour per device.
_STYLE = {("offset", "worst"): ("-", "o"), ("offset", "weights"): ("--", "o"),
          ("differential", "worst"): ("-", "s"), ("differential", "weights"): ("--", "s")}
_COLORS = {"ideal": "tab:gray", "uniform": "tab:blue", "wan2022": "tab:red",
           "wan2022-drift": "tab:purple"}


def _error_panels(plt, result, panels, pick, title, label, colors, legend_at, path) -> Path:
    """One panel per value of ``panels``: MVM error against ADC bits of the series that
    ``pick(series, value)`` selects, with the int8 floor; saved to ``path``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), sharey=True,
                             squeeze=False)
    for ax, value in zip(axes[0], panels):
        for s in result["series"]:
            if not pick(s, value):
                continue
            ls, mk = _STYLE[(s["encoding"], s["calibration"])]
            ax.semilogy(result["adc_bits"], s["vs_float_pct"], linestyle=ls, marker=mk,
                        markersize=3, color=colors.get(s["device"]) if colors else None,
                        label=label(s))
        ax.axhline(result["int8_floor_pct"], color="gray", linewidth=0.8,
                   label="int8 quantization alone")
        ax.set_title(title(value))
        ax.set_xlabel("ADC bits")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("MVM error vs float product (%)")
    axes[0][legend_at].legend(fontsize=7 if legend_at == 0 else 6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot(result: dict, out_dir: Path, drift_result: dict | None = None,
         budget_result: dict | None = None) -> list[Path]:
    """``reram_fidelity.png`` (one panel per device, the base's cell width),
    ``reram_fidelity_cells.png`` (one panel per cell width, every device) and, with
    ``drift_result``, ``reram_drift.png``; plus ``reram_fidelity.json``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    devices = list(result["devices"])
    cb0 = result["base"]["cell_bits"]
    paths = []

    paths.append(_error_panels(
        plt, result, devices, lambda s, dev: s["device"] == dev and s["cell_bits"] == cb0,
        lambda dev: f"device {dev}, {cb0}-bit cells",
        lambda s: f"{s['encoding']}, ADC range {s['calibration']}", None, 0,
        out_dir / "reram_fidelity.png"))
    cells = sorted({s["cell_bits"] for s in result["series"]})
    paths.append(_error_panels(
        plt, result, cells, lambda s, cb: s["cell_bits"] == cb, lambda cb: f"{cb}-bit cells",
        lambda s: f"{s['device']}, {s['encoding']}, {s['calibration']}", _COLORS, -1,
        out_dir / "reram_fidelity_cells.png"))

    if drift_result:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for s in drift_result["series"]:
            ls = "-" if s["encoding"] == "offset" else "--"
            ax.semilogx(drift_result["times_s"], s["vs_int8_pct"], linestyle=ls, marker="o",
                        markersize=3, color=_COLORS.get(s["device"]),
                        label=f"{s['device']}, {s['encoding']}")
        ax.set_xlabel("time after programming (s)")
        ax.set_ylabel("MVM error vs int8 product (%), lossless ADC")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out_dir / "reram_drift.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    js = out_dir / "reram_fidelity.json"
    js.write_text(json.dumps({"sweep": result, "drift": drift_result, "budget": budget_result},
                             indent=1) + "\n")
    paths.append(js)
    return paths
