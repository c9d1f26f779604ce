"""``hpt report`` and ``hpt compare``: HpT against GPU-only full-parameter training.

:func:`report` costs every run directory it is given (:func:`sw.cost.run_cost`), groups
them by app and writes ``report.md``, ``report.json`` and figures into one folder:

* time and energy of GPU-only full training, HpT with the paper policy and HpT with the
  intrinsic-dimension policy (and any other policy given), speedups and energy reductions;
* ``breakdown.png``: time and energy per unit and phase, stacked;
* ``loss.png``: loss curves with the switch marked;
* ``intrinsic_dim.png``: the measured intrinsic dimension of every layer over training;
* ``reram_wear.png``: write pulses per ReRAM cell after HpT (one programming at the switch)
  next to the same weights trained full-parameter on ReRAM (every step rewrites them);
* quality (test MSE) side by side; the assumptions (GPU, technology constants, sources).

:func:`compare` trains the apps x policies on the functional backend, then reports the
cross-app table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .cost import TECH, gpu_spec, run_cost, technology

__all__ = ["report", "compare", "reram_wear", "DEFAULT_GPU"]

DEFAULT_GPU = "A100-SXM4-80GB"
CASES = ("gpu-only", "paper", "intrinsic-dim")


def _read(run_dir: Path, name: str):
    path = Path(run_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a finished run (expected {name}; train it with "
                                "`hpt train ... --out DIR` first)")
    return json.loads(path.read_text())


def reram_wear(run_dir: Path) -> dict | None:
    """Write pulses per cell of every tile holding the run's frozen Q/V weights, from
    programming them once (what HpT does at the switch), on the golden tile model."""
    import torch

    from .backends import QuantizedBackend
    from .train import RunConfig
    run_dir = Path(run_dir)
    ckpt = run_dir / "checkpoint.pt"
    if not ckpt.is_file():
        return None
    cfg = RunConfig.from_dict(_read(run_dir, "config.json"))
    state = torch.load(ckpt, weights_only=False)["model"]
    backend = QuantizedBackend(cfg.hw)
    names = []
    for i in range(cfg.model.layers):
        for proj in ("q", "v"):
            key = f"layers.{i}.attn.{proj}"
            w = state.get(f"{key}.base.weight", state.get(f"{key}.weight"))
            backend.program(key, w.T.contiguous())
            names.append(key)
    # wear is (rows, cols, slices): one cell per weight slice; shown as rows x lanes
    tiles = [m.wear.reshape(m.wear.shape[0], -1).copy()
             for key in names for line in backend.device.tiles[key] for m in line]
    return {"matrices": names, "tiles": tiles, "tile": cfg.hw.tile}


def _plot_breakdown(costs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    bars, seen = [], set()
    for c in costs:                  # one GPU-only bar per app, then its HpT runs
        if c["app"] not in seen:
            seen.add(c["app"])
            bars.append((f"{c['app']}\nGPU-only", [("full", "gpu", c["gpu_only"])]))
        bars.append((f"{c['app']}\n{c['policy']}",
                     [(b["phase"], b["unit"], b) for b in c["breakdown"]]))
    keys = sorted({(p, u) for _, segs_ in bars for p, u, _ in segs_})
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.2 * len(bars) + 4), 4.5))
    for ax, what, unit in ((axes[0], "seconds", "s"), (axes[1], "joules", "J")):
        bottom = np.zeros(len(bars))
        for key in keys:
            vals = np.array([sum(v[what] for p, u, v in s if (p, u) == key) for _, s in bars])
            ax.bar(range(len(bars)), vals, bottom=bottom, label=f"{key[0]}: {key[1]}")
            bottom += vals
        ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=7)
        ax.set_ylabel(f"{what} ({unit})")
        ax.set_title(f"training {'time' if what == 'seconds' else 'energy'} by phase and unit")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_losses(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, hist, m in runs:
        steps = [s[0] for s in hist["step_loss"]]
        loss = [s[1] for s in hist["step_loss"]]
        line, = ax.plot(steps, loss, lw=0.8, label=name)
        if m.get("switch_step") is not None:
            ax.axvline(m["switch_step"], color=line.get_color(), ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (MSE)")
    ax.set_title("loss; dashed: switch to the low-parameter phase")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_intrinsic_dim(runs, path) -> bool:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drew = False
    for name, hist, m in runs:
        pts = [(p["step"], p["dims"]) for p in hist.get("policy", []) if p.get("dims")]
        if not pts:
            continue
        dims = np.array([d for _, d in pts], dtype=float)
        for layer in range(dims.shape[1]):
            ax.plot([s for s, _ in pts], dims[:, layer], marker="o", ms=3,
                    label=f"{name} layer {layer}")
            drew = True
        if m.get("switch_step") is not None:
            ax.axvline(m["switch_step"], color="k", ls="--", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("intrinsic dimension")
    ax.set_title("measured intrinsic dimension per layer (dashed: switch)")
    if drew:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no intrinsic-dimension run among these", ha="center",
                transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drew


def _plot_wear(wear, steps, endurance, path) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    once = np.concatenate([t.ravel() for t in wear["tiles"]])
    full = once * steps                   # every optimizer step rewrites every weight
    stats = {"hpt_max_pulses_per_cell": int(once.max()),
             "hpt_mean_pulses_per_cell": float(once.mean()),
             "full_on_reram_max_pulses_per_cell": int(full.max()),
             "full_on_reram_mean_pulses_per_cell": float(full.mean()),
             "endurance": endurance, "full_steps_assumed": steps,
             "hpt_endurance_used": float(once.max() / endurance),
             "full_on_reram_endurance_used": float(full.max() / endurance),
             # every update re-programmed like the first write (upper bound), or one pulse
             # per cell per update (lower bound: any changed weight needs a pulse)
             "full_on_reram_updates_to_wear_out": [int(endurance // once.max()),
                                                   int(endurance)]}
    t0 = wear["tiles"][0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    norm = LogNorm(vmin=1, vmax=max(endurance, full.max()))
    for ax, data, title in ((axes[0], t0, "HpT: programmed once at the switch"),
                            (axes[1], t0 * steps, f"full-parameter on ReRAM: {steps} updates")):
        im = ax.imshow(np.maximum(data, 1), norm=norm, cmap="magma", aspect="auto")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("cell column (weight slice lanes)")
        ax.set_ylabel("row")
    cb = fig.colorbar(im, ax=axes, label="write pulses per cell")
    cb.ax.axhline(endurance, color="c", lw=2)
    fig.suptitle(f"ReRAM writes per cell, first tile of {wear['matrices'][0]} "
                 f"(cyan: endurance {endurance:.0e})", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return stats


def report(run_dirs, out: Path, *, gpu: str = DEFAULT_GPU, tech=None, dtype: str = "fp32",
           gpu_specs: Path | None = None) -> Path:
    """Cost ``run_dirs`` and write report.md, report.json and the figures into ``out``."""
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("give at least one run directory")
    for d in run_dirs:
        for f in ("config.json", "metrics.json", "trace.json", "history.json"):
            _read(d, f)
    spec = gpu_spec(gpu, gpu_specs)
    tech_v = technology(tech)
    costs = [run_cost(d, spec, tech_v, dtype) for d in run_dirs]
    histories = [_read(d, "history.json") for d in run_dirs]
    metrics = [_read(d, "metrics.json") for d in run_dirs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    # per app: the three cases (+ other policies), quality side by side
    apps: dict = {}
    for c in costs:
        apps.setdefault(c["app"], []).append(c)
    table = []
    for app, cs in apps.items():
        full_runs = [c for c in cs if c["policy"] == "full"]
        ref = (full_runs or cs)[0]
        base = ref["gpu_only"]
        table.append({"app": app, "case": "gpu-only", "policy": "full", **base,
                      "speedup": 1.0, "energy_reduction": 1.0,
                      "test_mse": full_runs[0]["test_mse"] if full_runs else None,
                      "switch_step": None, "steps": ref["total_steps"], "run": ref["run"]})
        for c in cs:
            if c["policy"] == "full":
                continue
            table.append({"app": app, "case": f"hpt-{c['policy']}", "policy": c["policy"],
                          **c["hpt"], "speedup": base["seconds"] / c["hpt"]["seconds"],
                          "energy_reduction": base["joules"] / c["hpt"]["joules"],
                          "test_mse": c["test_mse"], "switch_step": c["switch_step"],
                          "steps": c["total_steps"], "run": c["run"]})

    order = {a: i for i, a in enumerate(apps)}
    hpt_costs = sorted([c for c in costs if c["policy"] != "full"] or costs,
                       key=lambda c: order[c["app"]])
    _plot_breakdown(hpt_costs, out / "breakdown.png")
    names = [f"{c['app']}/{c['policy']}" for c in costs]
    _plot_losses(list(zip(names, histories, metrics)), out / "loss.png")
    _plot_intrinsic_dim(list(zip(names, histories, metrics)), out / "intrinsic_dim.png")
    wear_stats = None                          # an HpT run's weights first
    for c, d in sorted(zip(costs, run_dirs), key=lambda cd: cd[0]["switch_step"] is None):
        wear = reram_wear(d)
        if wear is not None:
            wear_stats = {"run": str(d), **_plot_wear(wear, c["total_steps"],
                                                      tech_v["endurance_cycles"],
                                                      out / "reram_wear.png")}
            break

    assumptions = {"gpu": spec, "dtype": dtype,
                   "technology": {k: {"value": tech_v[k], "unit": TECH[k].unit,
                                      "source": TECH[k].source,
                                      "overridden": tech_v[k] != TECH[k].value}
                                  for k in TECH},
                   "scope": "training steps only (evaluation passes left out); the paper "
                            "policy's LoRA trial steps are costed as LoRA steps on the GPU; "
                            "GPU-only = the same number of full-parameter steps on the GPU"}
    doc = {"cases": table, "runs": costs, "reram_wear": wear_stats, "assumptions": assumptions}
    (out / "report.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    _write_md(out / "report.md", doc)
    return out / "report.md"


def _fmt(v, spec="{:.4g}"):
    return "n/a" if v is None else spec.format(v)


def _write_md(path: Path, doc: dict) -> None:
    a = doc["assumptions"]
    g = a["gpu"]
    lines = ["# HpT vs GPU-only full-parameter training", "",
             f"GPU: **{g['name']}** ({a['dtype']}; {g['source']}). Accelerator: the runs' "
             "systolic core and ReRAM tiles at the technology numbers below.", "",
             "| app | case | time (s) | energy (J) | speedup | energy reduction | test MSE | "
             "switch step / steps |", "|---|---|---|---|---|---|---|---|"]
    for r in doc["cases"]:
        lines.append(f"| {r['app']} | {r['case']} | {_fmt(r['seconds'])} | {_fmt(r['joules'])} | "
                     f"{_fmt(r['speedup'], '{:.2f}x')} | {_fmt(r['energy_reduction'], '{:.2f}x')} | "
                     f"{_fmt(r['test_mse'])} | {_fmt(r['switch_step'], '{}')} / {r['steps']} |")
    lines += ["", "## Where the time and energy go", "", "![breakdown](breakdown.png)", "",
              "| run | phase | unit | time (s) | energy (J) |", "|---|---|---|---|---|"]
    for c in doc["runs"]:
        for b in c["breakdown"]:
            lines.append(f"| {c['app']}/{c['policy']} | {b['phase']} | {b['unit']} | "
                         f"{_fmt(b['seconds'])} | {_fmt(b['joules'])} |")
        if c.get("overlap_s"):
            lines.append(f"| {c['app']}/{c['policy']} | low | overlap (systolic with ReRAM) | "
                         f"-{_fmt(c['overlap_s'])} | |")
    lines += ["", "GPU kernels per step (roofline): "
              + "; ".join(f"{c['app']}/{c['policy']} full {c['gpu_full_step']['kernels']} "
                          f"kernels {c['gpu_full_step']['flops'] / 1e6:.0f} MFLOP"
                          + (f", low {c['gpu_low_step']['kernels']} kernels "
                             f"{c['gpu_low_step']['flops'] / 1e6:.0f} MFLOP"
                             if "gpu_low_step" in c else "") for c in doc["runs"])]
    checked = [c for c in doc["runs"] if c.get("rtl_check")]
    for c in checked:
        r = c["rtl_check"]
        lines += ["", f"RTL check ({c['app']}/{c['policy']}, co-simulated): the systolic core "
                  f"ran {r['systolic_rtl_cycles']:,} cycles on the RTL, the cycle model says "
                  f"{r['systolic_model_cycles']:,} ({'equal' if r['equal'] else 'DIFFERENT'})."]
    measured = [c for c in doc["runs"] if c.get("calibrated")]
    if measured:
        lines += ["", "### Calibrated on the GPU", "",
                  "Runs trained on CUDA measured their full-parameter steps (CUDA events, NVML "
                  "energy). Below, every GPU share is scaled by measured / modelled; the "
                  "accelerator shares are unchanged.", "",
                  "| run | measured ms/step | modelled ms/step | measured J/step | modelled "
                  "J/step | GPU-only (s, J) | HpT (s, J) | speedup | energy reduction |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c in measured:
            gm, cal, fs = c["gpu_measured"], c["calibrated"], c["gpu_full_step"]
            mj = (f"{gm['joules'] / gm['steps']:.4g}" if gm.get("joules") is not None
                  else "n/a")
            lines.append(
                f"| {c['app']}/{c['policy']} ({gm['device']}) | "
                f"{gm['seconds'] / gm['steps'] * 1e3:.3f} | {fs['seconds'] * 1e3:.3f} | {mj} | "
                f"{fs['joules']:.4g} | {cal['gpu_only']['seconds']:.4g}, "
                f"{cal['gpu_only']['joules']:.4g} | {cal['hpt']['seconds']:.4g}, "
                f"{cal['hpt']['joules']:.4g} | {cal['speedup']:.2f}x | "
                f"{cal['energy_reduction']:.2f}x |")
    lines += ["", "## Training curves", "", "![loss](loss.png)", "",
              "![intrinsic dimension](intrinsic_dim.png)", ""]
    w = doc["reram_wear"]
    if w:
        lines += ["## ReRAM endurance", "", "![wear](reram_wear.png)", "",
                  f"HpT writes the frozen weights once: at most {w['hpt_max_pulses_per_cell']} "
                  f"pulses per cell ({w['hpt_endurance_used']:.2e} of an endurance of "
                  f"{w['endurance']:.0e}). Training the same weights full-parameter on ReRAM "
                  f"({w['full_steps_assumed']} updates) needs up to "
                  f"{w['full_on_reram_max_pulses_per_cell']:,} pulses per cell: "
                  f"{w['full_on_reram_endurance_used']:.2g}x the endurance "
                  f"(run {w['run']}; every update assumed to re-program each cell as the "
                  f"first write did). Full-parameter training on ReRAM wears the cells out "
                  f"after {w['full_on_reram_updates_to_wear_out'][0]:,} updates (at least one "
                  f"pulse per cell per update: {w['full_on_reram_updates_to_wear_out'][1]:,}); "
                  f"HpT programs once per training run.", ""]
    lines += ["## Assumptions", "", a["scope"] + ".", "",
              "| constant | value | unit | source |", "|---|---|---|---|"]
    for k, t in a["technology"].items():
        lines.append(f"| {k} | {t['value']:.4g}{' (overridden)' if t['overridden'] else ''} | "
                     f"{t['unit']} | {t['source']} |")
    lines += ["", f"GPU {g['name']}: peak {g['peak_flops']} FLOP/s, {g['mem_bw']:.3g} B/s, "
              f"{g['floor_w']}-{g['power_w']} W (floor: {g.get('floor_source', 'n/a')}).", "",
              "All numbers are also in report.json."]
    path.write_text("\n".join(lines) + "\n")


def compare(out: Path, *, apps=("swe", "weather", "wind", "epidemic"),
            policies=("full", "paper", "intrinsic-dim"), epochs: int = 20, seed: int = 0,
            jobs: int = 2, **report_kw) -> Path:
    """Train ``apps`` x ``policies`` (tiny preset, functional backend; finished runs are
    reused) and write the cross-app report into ``out/report``."""
    from .quality import run_grid
    out = Path(out)
    backends = ("functional",)
    run_grid(out, apps=apps, policies=policies, backends=backends, seeds=(seed,),
             epochs=epochs, jobs=jobs)
    dirs = [out / f"{a}_{p}_functional_s{seed}" for a in apps for p in policies]
    return report(dirs, out / "report", **report_kw)
