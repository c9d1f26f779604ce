"""``hpt report`` and ``hpt compare``: HpT against GPU-only full-parameter training.

:func:`report` costs every run directory it is given (:func:`sw.cost.estimate.run_cost`), groups
them by app and writes ``report.md``, ``report.json`` and figures into one folder:

* time and energy of GPU-only full training, HpT with the paper policy and HpT with the
  intrinsic-dimension policy (and any other policy given), speedups and energy reductions;
* ``breakdown.png``: time and energy per unit and phase, stacked (and ``breakdown_<app>.png``
  per app when there are several);
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

from sw.cost.estimate import SCHEDULE, TECH, gpu_spec, run_cost, technology

__all__ = ["report", "compare", "reram_wear", "DEFAULT_GPU"]

DEFAULT_GPU = "A100-SXM4-80GB"
CASES = ("gpu-only", "paper", "intrinsic-dim")


def _read(run_dir: Path, name: str):
    path = Path(run_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a finished run (expected {name}; train it with "
                                "`hpt train ... --out DIR` first)")
    return json.loads(path.read_text())


def _finished_runs(run_dirs) -> list[Path]:
    """The run folders, each checked to hold a finished run (one error naming the first
    that does not), before anything is costed or written."""
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("give at least one run directory")
    for d in run_dirs:
        for f in ("config.json", "metrics.json", "trace.json", "history.json"):
            _read(d, f)
    return run_dirs


def reram_wear(run_dir: Path) -> dict | None:
    """Write pulses per cell of every block holding the run's frozen weights (every encoder
    linear under the hpt mapping, the LoRA targets under qv), from programming them once
    (what HpT does at the switch), on the golden tile model."""
    import torch

    from sw.device.backends import QuantizedBackend
    from sw.model.hybrid import frozen_shapes
    from sw.train.trainer import RunConfig
    run_dir = Path(run_dir)
    ckpt = run_dir / "checkpoint.pt"
    if not ckpt.is_file():
        return None
    cfg = RunConfig.from_dict(_read(run_dir, "config.json"))
    state = torch.load(ckpt, weights_only=False)["model"]
    backend = QuantizedBackend(cfg.hw)
    names = list(frozen_shapes(cfg.model, cfg.train.mapping, cfg.policy.lora_targets))
    for key in names:
        w = state.get(f"{key}.base.weight", state.get(f"{key}.weight"))
        backend.program(key, w.T.contiguous())
    # wear is (rows, cols, slices): one cell per weight slice; shown as rows x lanes
    tiles = [m.wear.reshape(m.wear.shape[0], -1).copy()
             for key in names for line in backend.device.tiles[key] for m in line]
    return {"matrices": names, "tiles": tiles, "tile": cfg.hw.tile}


def _plot_breakdown(costs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    bars, seen = [], set()
    for c in costs:                  # one GPU-only bar per app and preset, then its HpT runs
        key = (c["app"], c.get("preset"))
        if key not in seen:
            seen.add(key)
            extra = "" if c.get("preset", "tiny") == "tiny" else f" {c['preset']}"
            bars.append((f"{c['app']}{extra}\nGPU-only", [("full", "gpu", c["gpu_only"])]))
        bars.append((_label(c).replace("/", "\n", 1),
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
           gpu_specs: Path | None = None, hw=None) -> Path:
    """Cost ``run_dirs`` and write report.md, report.json and the figures into ``out``.
    ``hw``: a ManycoreConfig to cost every run on (default: each run's own)."""
    run_dirs = _finished_runs(run_dirs)
    spec = gpu_spec(gpu, gpu_specs)
    tech_v = technology(tech)
    costs = [run_cost(d, spec, tech_v, dtype, hw=hw) for d in run_dirs]
    histories = [_read(d, "history.json") for d in run_dirs]
    metrics = [_read(d, "metrics.json") for d in run_dirs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    table = case_table(costs)
    apps = {c["app"]: None for c in costs}
    order = {a: i for i, a in enumerate(apps)}
    hpt_costs = sorted([c for c in costs if c["policy"] != "full"] or costs,
                       key=lambda c: (order[c["app"]], c.get("preset", "")))
    _plot_breakdown(hpt_costs, out / "breakdown.png")
    if len(apps) > 1:                          # and one figure per app
        for app in apps:
            _plot_breakdown([c for c in hpt_costs if c["app"] == app],
                            out / f"breakdown_{app}.png")
    names = [_label(c) for c in costs]
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
                   "scope": "training steps only (per-epoch evaluation passes left out); "
                            "the paper, early and branch policies' LoRA trial steps are "
                            "costed as LoRA steps on the GPU, the headroom and branch "
                            "policies' held-out evaluations as forward passes on the GPU; "
                            "GPU-only = the same number of full-parameter steps on the GPU; "
                            "energy reduction with the GPU off during the low phase (the "
                            "headline) and idle at its floor power",
                   "schedule": list(SCHEDULE)}
    doc = {"cases": table, "runs": costs, "reram_wear": wear_stats, "assumptions": assumptions}
    (out / "report.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    _write_md(out / "report.md", doc)
    return out / "report.md"


def case_table(costs) -> list[dict]:
    """Per app and model preset: GPU-only full training (a ``full`` run, else the first
    run's steps on the GPU), then every HpT run: mapping, policy, speedup, energy
    reduction (GPU off during the low phase; and idle at its floor), the ceiling
    1/(1-f), the per-step low/full ratio and test MSE."""
    groups: dict = {}
    for c in costs:
        groups.setdefault((c["app"], c.get("preset", "custom")), []).append(c)
    table = []
    for (app, preset), cs in groups.items():
        full_runs = [c for c in cs if c["policy"] == "full"]
        ref = (full_runs or cs)[0]
        base = ref["gpu_only"]
        table.append({"app": app, "preset": preset, "case": "gpu-only", "policy": "full",
                      "mapping": None, **base, "speedup": 1.0, "energy_reduction": 1.0,
                      "energy_reduction_gpu_idle": 1.0, "ceiling": None, "step_speedup": None,
                      "test_mse": full_runs[0]["test_mse"] if full_runs else None,
                      "switch_step": None, "steps": ref["total_steps"], "run": ref["run"]})
        for c in cs:
            if c["policy"] == "full":
                continue
            idle = c["hpt"]["joules"] + c.get("gpu_idle_low_j", 0.0)
            table.append({"app": app, "preset": preset,
                          "case": f"hpt-{c['policy']}" + ("" if c["mapping"] == "hpt"
                                                          else f" ({c['mapping']})"),
                          "policy": c["policy"], "mapping": c["mapping"],
                          **c["hpt"], "speedup": base["seconds"] / c["hpt"]["seconds"],
                          "energy_reduction": base["joules"] / c["hpt"]["joules"],
                          "energy_reduction_gpu_idle": base["joules"] / idle,
                          "ceiling": c.get("ceiling"), "step_speedup": c.get("step_speedup"),
                          "low_param_fraction": c.get("low_param_fraction"),
                          "test_mse": c["test_mse"], "switch_step": c["switch_step"],
                          "steps": c["total_steps"], "run": c["run"]})
    return table


def _fmt(v, spec="{:.4g}"):
    return "n/a" if v is None else spec.format(v)


def _label(c: dict) -> str:
    """A run's short name: app/policy, then its mapping and model preset when not the
    defaults."""
    return (f"{c['app']}/{c['policy']}" + ("" if c.get("mapping", "hpt") == "hpt"
                                           else f"/{c['mapping']}")
            + ("" if c.get("preset", "tiny") == "tiny" else f" ({c['preset']} preset)"))


def _manycore_line(m: dict) -> str:
    t, sa = m["tile"], m["systolic"]
    blocks = m["reram_cores"] * m["tiles_per_core"] * (m["crossbars_per_tile"]
                                                       // (t["weight_bits"] // t["cell_bits"]))
    return (f"{m['reram_cores']} ReRAM cores x {m['tiles_per_core']} tiles x "
            f"{m['crossbars_per_tile']} crossbars of {t['rows']}x{t['cols']} "
            f"({t['cell_bits']}-bit cells, {t['adc_bits']}-bit ADC; {blocks} weight blocks, "
            f"replication {m['replication'] or 'fill'}), {m['systolic_cores']} systolic "
            f"cores of {sa['rows']}x{sa['cols']} at {m['clock_hz'] / 1e9:g} GHz, vector "
            f"units of {m['vector']['lanes']} lanes")


def _write_md(path: Path, doc: dict) -> None:
    """report.md: the summary table, where the time and energy go, the GPU calibration,
    training curves, ReRAM endurance and the assumptions."""
    lines = [*_md_summary(doc), *_md_breakdown(doc), *_md_calibrated(doc["runs"]),
             "", "## Training curves", "", "![loss](loss.png)", "",
             "![intrinsic dimension](intrinsic_dim.png)", "",
             *_md_wear(doc["reram_wear"]), *_md_assumptions(doc["assumptions"])]
    path.write_text("\n".join(lines) + "\n")


def _md_summary(doc: dict) -> list[str]:
    a = doc["assumptions"]
    g = a["gpu"]
    mc = {json.dumps(c["manycore"], sort_keys=True): c["manycore"] for c in doc["runs"]}
    lines = ["# HpT vs GPU-only full-parameter training", "",
             f"GPU: **{g['name']}** ({a['dtype']}; {g['source']}). Manycore: "
             + "; ".join(_manycore_line(m) for m in mc.values())
             + ", at the technology numbers below. Mapping `hpt`: every frozen linear in "
             "ReRAM, all trainable and attention products on the systolic cores, element-wise "
             "work on the vector units, no GPU after the switch; `qv`: only the LoRA targets' "
             "frozen products and the LoRA/attention products offloaded, the rest on the GPU.", "",
             "| app | preset | case | time (s) | energy (J) | speedup | energy reduction "
             "(GPU off / idle) | ceiling 1/(1-f) | per-step low/full | test MSE | "
             "switch step / steps |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["cases"]:
        lines.append(f"| {r['app']} | {r['preset']} | {r['case']} | {_fmt(r['seconds'])} | "
                     f"{_fmt(r['joules'])} | {_fmt(r['speedup'], '{:.2f}x')} | "
                     f"{_fmt(r['energy_reduction'], '{:.2f}x')} / "
                     f"{_fmt(r['energy_reduction_gpu_idle'], '{:.2f}x')} | "
                     f"{_fmt(r['ceiling'], '{:.2f}x')} | {_fmt(r['step_speedup'], '{:.2f}x')} | "
                     f"{_fmt(r['test_mse'])} | {_fmt(r['switch_step'], '{}')} / {r['steps']} |")
    return lines


def _md_breakdown(doc: dict) -> list[str]:
    apps = list(dict.fromkeys(c["app"] for c in doc["runs"]))
    per_app = [f"![{a}](breakdown_{a}.png)" for a in apps] if len(apps) > 1 else []
    lines = ["", "## Where the time and energy go", "", "![breakdown](breakdown.png)", "",
             *per_app, *([""] if per_app else []),
             "| run | phase | unit | time (s) | energy (J) |", "|---|---|---|---|---|"]
    for c in doc["runs"]:
        for b in c["breakdown"]:
            lines.append(f"| {_label(c)} | {b['phase']} | {b['unit']} | "
                         f"{_fmt(b['seconds'])} | {_fmt(b['joules'])} |")
        if c.get("overlap_s"):
            lines.append(f"| {_label(c)} | low | overlap (systolic with ReRAM) | "
                         f"-{_fmt(c['overlap_s'])} | |")
    lines += ["", "GPU kernels per step (roofline): "
              + "; ".join(f"{_label(c)} full {c['gpu_full_step']['kernels']} "
                          f"kernels {c['gpu_full_step']['flops'] / 1e6:.0f} MFLOP"
                          + (f", low {c['gpu_low_step']['kernels']} kernels "
                             f"{c['gpu_low_step']['flops'] / 1e6:.0f} MFLOP"
                             if "gpu_low_step" in c else "") for c in doc["runs"])]
    checked = [c for c in doc["runs"] if c.get("rtl_check")]
    for c in checked:
        r = c["rtl_check"]
        lines += ["", f"RTL check ({_label(c)}, co-simulated): the systolic core "
                  f"ran {r['systolic_rtl_cycles']:,} cycles on the RTL, the cycle model says "
                  f"{r['systolic_model_cycles']:,} ({'equal' if r['equal'] else 'DIFFERENT'})."]
    return lines


def _md_calibrated(runs: list) -> list[str]:
    measured = [c for c in runs if c.get("calibrated")]
    if not measured:
        return []
    lines = ["", "### Calibrated on the GPU", "",
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
            f"| {_label(c)} ({gm['device']}) | "
            f"{gm['seconds'] / gm['steps'] * 1e3:.3f} | {fs['seconds'] * 1e3:.3f} | {mj} | "
            f"{fs['joules']:.4g} | {cal['gpu_only']['seconds']:.4g}, "
            f"{cal['gpu_only']['joules']:.4g} | {cal['hpt']['seconds']:.4g}, "
            f"{cal['hpt']['joules']:.4g} | {cal['speedup']:.2f}x | "
            f"{cal['energy_reduction']:.2f}x |")
    return lines


def _md_wear(w: dict | None) -> list[str]:
    if not w:
        return []
    lines = ["## ReRAM endurance", "", "![wear](reram_wear.png)", "",
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
    return lines


def _md_assumptions(a: dict) -> list[str]:
    g = a["gpu"]
    lines = ["## Assumptions", "", a["scope"] + ".", "", "Schedule:", ""]
    lines += [f"- {item}" for item in a["schedule"]]
    lines += ["",
              "| constant | value | unit | source |", "|---|---|---|---|"]
    for k, t in a["technology"].items():
        lines.append(f"| {k} | {t['value']:.4g}{' (overridden)' if t['overridden'] else ''} | "
                     f"{t['unit']} | {t['source']} |")
    lines += ["", f"GPU {g['name']}: peak {g['peak_flops']} FLOP/s, {g['mem_bw']:.3g} B/s, "
              f"{g['floor_w']}-{g['power_w']} W (floor: {g.get('floor_source', 'n/a')}).", "",
              "All numbers are also in report.json."]
    return lines


def compare(out: Path, *, apps=("swe", "weather", "wind", "epidemic"),
            policies=("full", "paper", "intrinsic-dim"), epochs: int = 20, seed: int = 0,
            jobs: int = 2, presets=("tiny",), mappings=("hpt", "qv"), paper_epochs: int = 2,
            manycore=None, engine: str = "ray", address: str | None = None,
            model: dict | None = None, data: dict | None = None, **report_kw) -> Path:
    """Train apps x presets x mappings x policies on the functional backend (finished runs
    are reused; the paper preset for ``paper_epochs`` epochs) on ``manycore`` (default the
    atleus preset), then write the cross-app report into ``out/report``. ``model``:
    ModelConfig fields over each preset; ``data``: DataConfig fields (``flow_kmh`` reaches
    the weather app only; :func:`sw.experiments.quality.run_grid` takes the same)."""
    from hw.manycore import preset as manycore_preset

    from sw.experiments.quality import run_jobs
    out = Path(out)
    hw = manycore or manycore_preset("atleus")
    jobs_list, dirs = [], []
    for app in apps:
        for preset in presets:
            ep = paper_epochs if preset == "paper" else epochs
            for policy in policies:
                for mapping in (("hpt",) if policy == "full" else mappings):
                    name = (f"{app}_{preset}_full_s{seed}" if policy == "full"
                            else f"{app}_{preset}_{policy}_{mapping}_s{seed}")
                    jobs_list.append({"app": app, "policy": policy, "backend": "functional",
                                      "seed": seed, "epochs": ep, "out": str(out),
                                      "preset": preset, "mapping": mapping,
                                      "hw": hw.to_dict(), "name": name,
                                      "model": model, "data": data})
                    dirs.append(out / name)
    run_jobs(jobs_list, jobs, engine=engine, address=address, quiet=False)
    return report(dirs, out / "report", **report_kw)


#: What ``hpt sensitivity`` varies, one at a time: (label, kind, name, values); kind
#: "hw" changes a ManycoreConfig field, "tech" a technology constant.
SENSITIVITY = (
    ("replication", "hw", "replication", (1, 4, 16, None)),
    ("ReRAM cores (capacity)", "hw", "reram_cores", (16, 64)),
    ("ADC bits", "hw", "tile.adc_bits", (8, 9, 10)),
    ("DAC bits (input steps)", "hw", "tile.dac_bits", (1, 2, 4)),
    ("ADC rate (S/s)", "tech", "adc_rate_hz", (0.64e9, 1.28e9, 2.56e9)),
    ("crossbar read (s)", "tech", "xbar_read_s", (50e-9, 100e-9, 200e-9)),
    ("systolic cores", "hw", "systolic_cores", (1, 4, 16)),
    ("NoC energy (pJ/bit/hop)", "hw", "links.e_noc_pj_bit_hop", (0.1, 0.5, 2.0)),
    ("GPU per-op overhead (s)", "tech", "gpu_op_overhead_s", (50e-6, 5e-6)),
)


def sensitivity(run_dirs, out: Path, *, gpu: str = DEFAULT_GPU, tech=None, dtype: str = "fp32",
                gpu_specs: Path | None = None, hw=None) -> Path:
    """Whole-run speedup and energy reduction (GPU off) of every HpT run in ``run_dirs`` as
    each factor of :data:`SENSITIVITY` varies alone, the rest at the runs' manycore (or
    ``hw``) and ``tech``; writes ``sensitivity.md`` and ``sensitivity.json``."""
    from sw.train.trainer import RunConfig
    run_dirs = _finished_runs(run_dirs)
    spec = gpu_spec(gpu, gpu_specs)
    base_tech = dict(tech or {})
    technology(base_tech)
    hpt_runs = [d for d in run_dirs if _read(d, "metrics.json")["switch_step"] is not None]
    if not hpt_runs:
        raise ValueError("no HpT run among these (every run is full-parameter)")
    rows = []
    for label, kind, name, values in SENSITIVITY:
        for value in values:
            t = dict(base_tech)
            if kind == "tech":
                t[name] = value
            tv = technology(t)
            for d in hpt_runs:
                run_hw = hw or RunConfig.from_dict(_read(d, "config.json")).hw
                point_hw = run_hw.replace(**{name: value}) if kind == "hw" else run_hw
                c = run_cost(d, spec, tv, dtype, hw=point_hw)
                base = c["gpu_only"]
                rows.append({"factor": label, "name": name, "value": value, "run": _label(c),
                             "app": c["app"], "mapping": c["mapping"],
                             "speedup": base["seconds"] / c["hpt"]["seconds"],
                             "energy_reduction": base["joules"] / c["hpt"]["joules"],
                             "step_speedup": c.get("step_speedup"), "ceiling": c["ceiling"]})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sensitivity.json").write_text(json.dumps(
        {"gpu": spec["name"], "tech": base_tech, "rows": rows}, indent=1, default=str) + "\n")
    runs = list(dict.fromkeys(r["run"] for r in rows))
    lines = [f"# Sensitivity of HpT's whole-run ratios ({spec['name']} baseline)", "",
             "One factor varies at a time; the rest stay at each run's manycore and the "
             "technology constants. Cells: whole-run speedup / energy reduction (GPU off in "
             "the low phase); the last line of each run is its ceiling 1/(1-f).", "",
             "| factor | value | " + " | ".join(runs) + " |",
             "|---|---|" + "---|" * len(runs)]
    for label, kind, name, values in SENSITIVITY:
        for value in values:
            cells = []
            for run in runs:
                r = next(x for x in rows if x["run"] == run and x["name"] == name
                         and x["value"] == value)
                cells.append(f"{r['speedup']:.2f}x / {r['energy_reduction']:.2f}x")
            shown = "fill" if value is None else f"{value:g}"
            lines.append(f"| {label} | {shown} | " + " | ".join(cells) + " |")
    ceil = {r["run"]: r["ceiling"] for r in rows}
    lines.append("| ceiling 1/(1-f) | | " + " | ".join(_fmt(ceil[r], "{:.2f}x") for r in runs)
                 + " |")
    path = out / "sensitivity.md"
    path.write_text("\n".join(lines) + "\n")
    return path
