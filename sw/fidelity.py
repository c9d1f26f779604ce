"""MVM fidelity of a ReRAM tile against the ideal float product (``hpt fidelity``).

Gaussian weights and inputs are quantized by :func:`sw.backends.quantize` (symmetric,
per-tensor scale), pushed through the bit-exact golden model (the RTL's numerics) and compared with
the float product ``x @ W``. The relative error ``||y_tile - y_float|| / ||y_float||``
is measured for every ADC resolution and cell width, with device non-idealities off
(ADC and quantization only) and at the configuration's defaults (programming variation
after write-verify).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import torch

from hw.reram import TileConfig
from sw.backends import quantize
from sw.golden.reram import ReramModel

__all__ = ["relative_error", "sweep", "plot"]


def relative_error(cfg: TileConfig, W: np.ndarray, X: np.ndarray) -> float:
    wq, sw = quantize(torch.from_numpy(W), cfg.weight_bits)     # the host's one quantizer
    xq, sx = quantize(torch.from_numpy(X), cfg.input_bits)
    model = ReramModel(cfg)
    model.program(0, wq)
    y = model.mvm(xq) * (sw * sx)
    ref = X @ W
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


def sweep(rows: int = 128, cols: int = 128, adc_bits=range(4, 11), cell_bits=(1, 2, 4),
          vectors: int = 64, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((rows, cols))
    X = rng.standard_normal((vectors, rows))
    out = {"rows": rows, "cols": cols, "vectors": vectors, "seed": seed,
           "adc_bits": list(adc_bits), "series": []}
    for cb in cell_bits:
        for label, nonideal in (("ADC + quantization", False), ("+ programming variation", True)):
            errs = []
            for a in adc_bits:
                cfg = TileConfig(rows=rows, cols=cols, cell_bits=cb, adc_bits=a)
                if not nonideal:
                    cfg = cfg.ideal(adc_bits=a)
                errs.append(relative_error(cfg, W, X))
            out["series"].append({"cell_bits": cb, "label": label, "nonideal": nonideal,
                                  "relative_error": errs})
    lossless = TileConfig(rows=rows, cols=cols).ideal()
    out["int8_floor"] = relative_error(lossless, W, X)   # quantization alone
    return out


def plot(result: dict, out_dir: Path) -> tuple[Path, Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {1: "tab:blue", 2: "tab:orange", 4: "tab:green"}
    for s in result["series"]:
        ax.semilogy(result["adc_bits"], s["relative_error"], marker="o",
                    linestyle="--" if s["nonideal"] else "-", color=colors.get(s["cell_bits"]),
                    label=f"{s['cell_bits']}-bit cells, {s['label']}")
    ax.axhline(result["int8_floor"], color="gray", linewidth=0.8,
               label="int8 quantization alone (lossless ADC)")
    ax.set_xlabel("ADC bits")
    ax.set_ylabel("relative error ||y - x W|| / ||x W||")
    ax.set_title(f"{result['rows']}x{result['cols']} ReRAM tile, Gaussian W and x, "
                 f"{result['vectors']} vectors")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png, js = out_dir / "reram_fidelity.png", out_dir / "reram_fidelity.json"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    js.write_text(json.dumps(result, indent=2) + "\n")
    return png, js
