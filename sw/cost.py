"""Runtime and energy of a training run, op by op over its trace.

Three machines are costed from what a run recorded (``trace.json``, ``metrics.json``,
``config.json``):

* **GPU** (the full-parameter phase, and the host's share of the low-parameter phase): a
  roofline per dispatched kernel. :func:`profile_step` runs one real training step of the
  run's model under a ``TorchDispatchMode`` and records every kernel's FLOPs (PyTorch's
  own FLOP formulas) and bytes touched (its tensors); time is
  ``max(FLOPs / peak, bytes / bandwidth) + launch``, energy is that time at a power between
  the board's idle and peak in proportion to the roofline utilisation. The GPU's numbers
  come from a spec file (:data:`GPU_SPECS`, ``sw/gpus.json``).
* **Systolic core**: the closed-form cycle count (``SystolicConfig.matmul_cycles``, equal to
  the RTL's cycles, see ``tests/test_cost.py``) at the core's clock; energy per MAC and per
  SRAM byte.
* **ReRAM tiles**: physical latencies, not the RTL's row-serial cycles: an MVM takes one
  crossbar read per input step, overlapped with the ADCs converting the previous one;
  energy for DACs, crossbar reads, ADC conversions and shift-add; programming costs
  write pulses (energy) and write-verify rounds (time); endurance is pulses per cell.
* **Data movement** between the GPU and the accelerator: the integer operands and
  results of every offloaded op, and the weights written at the switch, over a link.

Concurrent groups (``chip/concurrent`` rows: the frozen MVM beside the LoRA-A product)
are credited with the overlap of the two units' physical times.

Every constant lives in :data:`TECH`, with its unit and source; :func:`technology` applies
a user's overrides (a JSON file or ``name=value`` pairs).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Constant", "TECH", "GPU_SPECS", "technology", "gpu_spec", "systolic_cycles",
           "systolic_cost", "mvm_cost", "program_cost", "movement_cost", "gpu_kernel_cost",
           "gpu_step_cost", "profile_step", "accelerator_cost", "run_cost", "Cost"]


@dataclass(frozen=True)
class Constant:
    value: float
    unit: str
    source: str


_H = "Horowitz, ISSCC 2014, 'Computing's energy problem', Fig. 1.1.9 (45 nm, 0.9 V)"
_I = "Shafiee et al., ISCA 2016 (ISAAC), Table 6 (32 nm)"
_N = "NeuroSim (Chen et al., TCAD 2018) RRAM defaults: 2 V write, 10 ns pulse, 6 kOhm LRS"

#: Technology constants. Override with ``technology({"name": value})`` or a JSON file.
TECH: dict[str, Constant] = {
    # ---- digital (systolic core) -------------------------------------------------------
    "systolic_clock_hz": Constant(1.0e9, "Hz", "assumption: 1 GHz (TPU v1 runs 700 MHz, "
                                  "Jouppi et al., ISCA 2017); ours, overridable"),
    "e_mult_int8_pj": Constant(0.2, "pJ", f"{_H}: 8-bit integer multiply"),
    "e_add_int32_pj": Constant(0.1, "pJ", f"{_H}: 32-bit integer add (the accumulation)"),
    "mult_energy_exponent": Constant(2.0, "", "assumption: multiplier energy grows with the "
                                     "square of the operand width (array multiplier)"),
    "e_sram_byte_pj": Constant(1.25, "pJ/B", f"{_H}: 8 KB SRAM, 64-bit read 10 pJ"),
    # ---- ReRAM tile --------------------------------------------------------------------
    "xbar_read_s": Constant(100e-9, "s", f"{_I}: 100 ns crossbar read cycle"),
    "e_xbar_read_pj": Constant(30.0, "pJ", f"{_I}: 8 crossbars 2.4 mW -> 0.3 mW x 100 ns"),
    "e_dac_pj": Constant(0.39, "pJ", f"{_I}: 8x128 1-bit DACs 4 mW -> 3.9 uW x 100 ns"),
    "e_adc_pj": Constant(1.5625, "pJ", f"{_I}: 8-bit ADC 2 mW at 1.28 GS/s"),
    "adc_ref_bits": Constant(8.0, "bit", f"{_I}: the ADC above is 8-bit"),
    "adc_rate_hz": Constant(1.28e9, "S/s", f"{_I}: 1.28 GS/s per ADC"),
    "adcs_per_slice": Constant(1.0, "", f"{_I}: one ADC per 128x128 crossbar (weight slice)"),
    "e_shift_add_pj": Constant(0.04, "pJ", f"{_I}: 4 shift-and-add units 0.2 mW at 1.28 GHz"),
    "e_write_pulse_pj": Constant(6.7, "pJ", f"{_N}: V^2/R x t = 4/6000 x 10 ns per cell"),
    "write_pulse_s": Constant(10e-9, "s", f"{_N}: write pulse width"),
    "reram_replication": Constant(1.0, "copies", "assumption: one copy of each frozen "
                                  "matrix, as on the simulated chip; ISAAC replicates weights "
                                  "to balance its pipeline (more copies: MVM time / copies, "
                                  "programming x copies)"),
    "endurance_cycles": Constant(1e6, "writes", "Wong et al., Proc. IEEE 2012 (metal-oxide "
                                 "RRAM): 1e6 to 1e12 reported; the conservative end"),
    # ---- data movement -----------------------------------------------------------------
    "link_bw_bytes_s": Constant(32e9, "B/s", "PCIe 4.0 x16: 16 GT/s x 16 lanes, 128b/130b"),
    "e_link_pj_per_byte": Constant(162.5, "pJ/B", f"{_H}: DRAM 1.3 nJ per 64-bit access "
                                   "(operands pass through off-chip memory once)"),
    # ---- GPU ---------------------------------------------------------------------------
    "gpu_op_overhead_s": Constant(50e-6, "s", "measured here (CUDA events): PyTorch 2.11 eager "
                                  "on an H100 host, 9.57 ms per 177-op tiny step and 50.7 ms per "
                                  "877-op paper-preset step, ~50 us per op beyond the roofline "
                                  "(Python, autograd, dispatch, launch; a bare launch is 3-10 us)"),
    "offload_op_overhead_s": Constant(50e-6, "s", "assumption: the host issues an offloaded op "
                                      "(or a concurrent group) at the cost of a GPU op"),
}

GPU_SPECS = Path(__file__).with_name("gpus.json")


def technology(overrides: dict | str | Path | None = None) -> dict[str, float]:
    """Constant values, with ``overrides`` (a dict, or a JSON file of ``{name: value}``)
    applied. An unknown name is an error naming it."""
    if isinstance(overrides, (str, Path)):
        path = Path(overrides)
        try:
            overrides = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read technology overrides: {exc}") from None
    tech = {k: c.value for k, c in TECH.items()}
    for k, v in (overrides or {}).items():
        if k not in tech:
            raise ValueError(f"unknown technology constant {k!r}; known: {', '.join(sorted(tech))}")
        try:
            tech[k] = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"technology constant {k!r} must be a number, not {v!r}") from None
        if not math.isfinite(tech[k]) or tech[k] < 0:
            raise ValueError(f"technology constant {k!r} must be finite and >= 0, not {v!r}")
    return tech


def gpu_spec(name: str, path: Path | None = None) -> dict:
    path = Path(path or GPU_SPECS)
    try:
        specs = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read GPU specs: {exc}") from None
    if name not in specs or name.startswith("_"):
        raise ValueError(f"unknown GPU {name!r} in {path}; known: "
                         + ", ".join(k for k in specs if not k.startswith("_")))
    spec = dict(specs[name], name=name)
    for key in ("peak_flops", "mem_bw", "power_w", "floor_w"):
        if key not in spec:
            raise ValueError(f"GPU {name!r} in {path} has no {key!r}")
    return spec


@dataclass
class Cost:
    seconds: float = 0.0
    joules: float = 0.0

    def __add__(self, o: "Cost") -> "Cost":
        return Cost(self.seconds + o.seconds, self.joules + o.joules)

    def scaled(self, k: float) -> "Cost":
        return Cost(self.seconds * k, self.joules * k)

    def to_dict(self) -> dict:
        return {"seconds": self.seconds, "joules": self.joules}


# ---- unit costs ---------------------------------------------------------------------------
def systolic_cycles(sa, batch: int, m: int, k: int, n: int) -> int:
    """Cycles of ``batch`` (m x k) @ (k x n) products on the core ``sa``: the closed form
    of the tiled program, which the RTL meets exactly (tests/test_cost.py)."""
    return batch * sa.matmul_cycles(m, k, n)


def systolic_cost(sa, tech: dict, batch: int, m: int, k: int, n: int) -> Cost:
    """``batch`` products (m x k) @ (k x n) on the core ``sa`` (a SystolicConfig): cycles
    from the closed form; energy = MACs x (multiply + 32-bit add) + SRAM bytes (operands
    read once per output tile that needs them, results written once)."""
    cycles = systolic_cycles(sa, batch, m, k, n)
    macs = batch * m * k * n
    tm, tn = math.ceil(m / sa.rows), math.ceil(n / sa.cols)
    in_b, acc_b = sa.in_width / 8, sa.acc_width / 8
    sram = batch * (in_b * (m * k * tn + k * n * tm) + acc_b * m * n)
    e_mult = tech["e_mult_int8_pj"] * (sa.in_width / 8) ** tech["mult_energy_exponent"]
    pj = macs * (e_mult + tech["e_add_int32_pj"]) + sram * tech["e_sram_byte_pj"]
    return Cost(cycles / tech["systolic_clock_hz"], pj * 1e-12)


def mvm_step_seconds(tile, tech: dict, transpose: bool = False) -> float:
    """One input step of an MVM on one tile: a crossbar read, pipelined with the ADCs
    converting the previous step's outputs (whichever is slower sets the pace)."""
    outputs = tile.rows if transpose else tile.cols
    convert = outputs / (tech["adcs_per_slice"] * tech["adc_rate_hz"])
    return max(tech["xbar_read_s"], convert)


def mvm_cost(tile, tech: dict, vectors: int, tiles: int, transpose: bool = False) -> Cost:
    """``vectors`` input vectors through a matrix held on ``tiles`` tiles (all at once).
    Energy: per crossbar activation (input step x weight slice) the read and one DAC per
    driven line; per conversion the ADC (energy x 2^(bits - ref bits), Walden scaling) and
    a shift-add. Time: vectors x input steps x step time (tiles in parallel)."""
    steps, slices = tile.input_steps, tile.slices
    lines_in = tile.cols if transpose else tile.rows
    outputs = tile.rows if transpose else tile.cols
    per_vec_tile_reads = steps * slices
    per_vec_tile_conv = steps * slices * outputs
    e_adc = tech["e_adc_pj"] * 2.0 ** (tile.adc_bits - tech["adc_ref_bits"])
    pj = vectors * tiles * (per_vec_tile_reads * (tech["e_xbar_read_pj"] + lines_in * tech["e_dac_pj"])
                            + per_vec_tile_conv * (e_adc + tech["e_shift_add_pj"]))
    seconds = vectors * steps * mvm_step_seconds(tile, tech, transpose)
    return Cost(seconds / max(tech["reram_replication"], 1.0), pj * 1e-12)


def program_cost(tile, tech: dict, rows: int, pulses: int) -> Cost:
    """Write-verify programming of ``rows`` crossbar rows with ``pulses`` write pulses in
    all: every pulse costs its energy; a row takes up to ``verify_iters`` rounds of a
    pulse and a verify read (cells of a row in parallel; the bound is the time)."""
    copies = max(tech["reram_replication"], 1.0)
    per_row = tile.verify_iters * (tech["write_pulse_s"] + tech["xbar_read_s"])
    verify_reads = rows * tile.verify_iters
    pj = pulses * tech["e_write_pulse_pj"] + verify_reads * tech["e_xbar_read_pj"]
    return Cost(rows * per_row * copies, pj * 1e-12 * copies)


def movement_cost(tech: dict, nbytes: float) -> Cost:
    return Cost(nbytes / tech["link_bw_bytes_s"], nbytes * tech["e_link_pj_per_byte"] * 1e-12)


def gpu_kernel_cost(spec: dict, tech: dict, flops: float, nbytes: float,
                    dtype: str = "fp32") -> Cost:
    """Roofline time of one kernel plus the per-op overhead; power between the floor (a
    GPU running launch-bound work) and peak, in proportion to how busy the roofline says
    the GPU is."""
    peak = spec["peak_flops"].get(dtype)
    if peak is None:
        raise ValueError(f"GPU {spec['name']} has no peak for dtype {dtype!r}")
    busy = max(flops / peak, nbytes / spec["mem_bw"])
    t = busy + tech["gpu_op_overhead_s"]
    watts = spec["floor_w"] + (spec["power_w"] - spec["floor_w"]) * (busy / t if t else 0.0)
    return Cost(t, t * watts)


# ---- GPU kernels of one training step ------------------------------------------------------
def profile_step(run_cfg, phase: str, ranks=None) -> list[dict]:
    """Kernels of one training step (forward, backward, optimizer) of ``run_cfg``'s model
    in ``phase`` ("full"; "low" with LoRA ``ranks``; "trial": the paper policy's LoRA copy,
    all on the GPU): ``{"op", "flops", "bytes"}`` per dispatched kernel (views launch
    nothing and are left out). In the low phase the offloaded products
    (:mod:`sw.hybrid`) are not GPU kernels and are left out."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
    from torch.utils.flop_counter import flop_registry

    from .backends import TorchBackend
    from .data import load
    from .hybrid import apply_lora, set_backend
    from .model import SpatialTransformer

    def nbytes(x):
        if isinstance(x, torch.Tensor):
            return x.numel() * x.element_size()
        if isinstance(x, (list, tuple)):
            return sum(nbytes(y) for y in x)
        return 0

    class Kernels(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.rows = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if not func.is_view and func.overloadpacket not in _FREE:
                f = flop_registry.get(func.overloadpacket)
                flops = 0
                if f is not None:
                    flops = f(*args, **kwargs, out_val=out)
                self.rows.append({"op": str(func.overloadpacket).split(".")[-1],
                                  "flops": int(flops),
                                  "bytes": nbytes(list(args)) + nbytes(list(kwargs.values()))
                                  + nbytes(out)})
            return out

    class Offloaded(TorchBackend):          # the accelerator's products: not GPU kernels
        def matmul(self, a, b, layer=""):
            with _disable_current_modes():
                return super().matmul(a, b, layer)

        def mvm(self, key, x):
            with _disable_current_modes():
                return super().mvm(key, x)

        def mvm_t(self, key, y):
            with _disable_current_modes():
                return super().mvm_t(key, y)

        def program(self, key, W):
            with _disable_current_modes():
                return super().program(key, W)

    _FREE = {torch.ops.aten.detach, torch.ops.aten.lift_fresh, torch.ops.aten._to_copy,
             torch.ops.aten.empty_like, torch.ops.aten.empty, torch.ops.aten.empty_strided,
             torch.ops.aten.zeros_like, torch.ops.aten.ones_like, torch.ops.aten._unsafe_view,
             torch.ops.aten._local_scalar_dense,        # Adam's step count lives on the host
             torch.ops.profiler._record_function_enter_new,
             torch.ops.profiler._record_function_exit}
    torch.manual_seed(0)
    data = load(run_cfg.data)
    model = SpatialTransformer(run_cfg.model, data.n_features)
    if phase in ("low", "trial"):
        apply_lora(model, dict(enumerate(ranks)), alpha=run_cfg.policy.lora_alpha,
                   dropout=run_cfg.policy.lora_dropout)
    if phase == "low":
        set_backend(model, Offloaded(run_cfg.hw))
    params = [p for p in model.parameters() if p.requires_grad]
    # foreach: the multi-tensor kernels PyTorch uses on CUDA by default
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=run_cfg.train.weight_decay,
                            foreach=True)
    b = run_cfg.train.batch
    X = torch.from_numpy(data.train.X[:b])
    y = torch.from_numpy(data.train.y[:b])
    model.train()
    mode = Kernels()
    with mode:
        loss = torch.nn.functional.mse_loss(model(X), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return mode.rows


def gpu_step_cost(kernels: list[dict], spec: dict, tech: dict, dtype: str = "fp32") -> Cost:
    total = Cost()
    for k in kernels:
        total = total + gpu_kernel_cost(spec, tech, k["flops"], k["bytes"], dtype)
    return total


# ---- a whole run ---------------------------------------------------------------------------
def _op_bytes(row, hw) -> float:
    """Bytes between the GPU and the accelerator for one trace row (all its calls)."""
    sa, t = hw.systolic, hw.tile
    if row["unit"] == "systolic":
        batch, m, k, n = row["shape"]
        return row["count"] * batch * ((m * k + k * n) * sa.in_width / 8 + m * n * sa.acc_width / 8)
    if row["op"] == "program":
        r, c = row["shape"]
        return r * c * t.weight_bits / 8 * row["count"]
    n_vec, rows, cols = row["shape"]
    n_in, n_out = (cols, rows) if row["op"] == "mvm_t" else (rows, cols)
    return row["count"] * n_vec * (n_in * t.input_bits / 8 + n_out * t.out_width / 8)


def accelerator_cost(trace: list[dict], hw, tech: dict, phase: str = "low") -> dict:
    """Costs of the offloaded ops of ``phase`` in a trace, per unit, with the overlap of
    concurrent groups taken off the time (not the energy)."""
    units = {"systolic": Cost(), "reram": Cost(), "reram_program": Cost(), "movement": Cost(),
             "host": Cost()}
    overlap_s = 0.0
    issues = 0                  # ops (or concurrent groups) the host issues
    t = hw.tile
    for r in trace:
        if r["phase"] != phase:
            continue
        if r["unit"] == "systolic":
            batch, m, k, n = r["shape"]
            units["systolic"] += systolic_cost(hw.systolic, tech, batch, m, k, n).scaled(r["count"])
        elif r["unit"] == "reram" and r["op"] == "program":
            units["reram_program"] += program_cost(t, tech, r["rows"], r["write_pulses"])
        elif r["unit"] == "reram":
            _, rows, cols = r["shape"]
            tr, tc = hw.tile_grid((rows, cols))
            units["reram"] += mvm_cost(t, tech, r["vectors"] // (tr * tc), tr * tc,
                                       transpose=r["op"] == "mvm_t")
        elif r["unit"] == "chip" and r["op"] == "concurrent":
            sa_s = r["systolic_model"] / tech["systolic_clock_hz"]
            step = mvm_step_seconds(t, tech)
            tile_s = r.get("mvm_vectors", 0) * t.input_steps * step \
                / max(tech["reram_replication"], 1.0)
            overlap_s += min(sa_s, tile_s)
            issues -= r["count"] * (r["shape"][0] - 1)      # one issue per group
            continue
        if r["unit"] in ("systolic", "reram"):
            units["movement"] += movement_cost(tech, _op_bytes(r, hw))
            issues += r["count"]
    units["host"] = Cost(issues * tech["offload_op_overhead_s"], 0.0)
    return {"units": units, "overlap_s": overlap_s, "issues": issues}


def rtl_check(trace: list[dict]) -> dict | None:
    """For a co-simulated run: the systolic core's RTL cycles against the closed form the
    cost model uses (standalone products: RTL cycles less one harness cycle per run;
    concurrent groups: the core's active cycles)."""
    rtl = model = 0
    seen = False
    for r in trace:
        if r["unit"] == "systolic" and "rtl_cycles" in r:
            rtl += r["rtl_cycles"] - r["rtl_runs"]
            model += r["cycles_model"]
            seen = True
        elif r["unit"] == "chip" and "rtl_systolic_active" in r:
            rtl += r["rtl_systolic_active"]
            model += r["systolic_model"]
            seen = True
    if not seen:
        return None
    return {"systolic_rtl_cycles": rtl, "systolic_model_cycles": model, "equal": rtl == model}


def run_cost(run_dir: Path, spec: dict, tech: dict, dtype: str = "fp32") -> dict:
    """Time and energy of a run as executed (HpT: GPU full phase, the switch, the hybrid
    low phase) and of GPU-only full-parameter training of the same number of steps.
    Evaluation passes are left out of both."""
    from .train import RunConfig
    run_dir = Path(run_dir)
    cfg = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    m = json.loads((run_dir / "metrics.json").read_text())
    trace = json.loads((run_dir / "trace.json").read_text())
    total = m["total_steps"]
    switch = m["switch_step"] if m["switch_step"] is not None else total
    low_steps = total - switch
    full_k = profile_step(cfg, "full")
    full_step = gpu_step_cost(full_k, spec, tech, dtype)
    out = {"run": str(run_dir), "app": cfg.data.app, "policy": cfg.policy.name,
           "backend": cfg.train.backend, "total_steps": total, "switch_step": m["switch_step"],
           "low_steps": low_steps, "test_mse": m["test_mse"],
           "gpu_full_step": {**full_step.to_dict(), "kernels": len(full_k),
                             "flops": sum(k["flops"] for k in full_k),
                             "bytes": sum(k["bytes"] for k in full_k)}}
    gpu_only = full_step.scaled(total)
    breakdown = {("full", "gpu"): full_step.scaled(switch)}
    # the paper policy trains a LoRA copy beside the full model for k steps per trial
    hist = run_dir / "history.json"
    trials = [e for e in (json.loads(hist.read_text()).get("policy", []) if hist.is_file()
                          else []) if "trial" in e]
    out["trial_steps"] = len(trials) * cfg.policy.k
    if trials:
        ranks = m["ranks"] or [cfg.policy.lora_rank] * cfg.model.layers
        trial_step = gpu_step_cost(profile_step(cfg, "trial", ranks), spec, tech, dtype)
        breakdown[("full", "gpu LoRA trial")] = trial_step.scaled(out["trial_steps"])
    if low_steps > 0 or m["switch_step"] is not None:
        low_k = profile_step(cfg, "low", m["ranks"])
        low_step = gpu_step_cost(low_k, spec, tech, dtype)
        out["gpu_low_step"] = {**low_step.to_dict(), "kernels": len(low_k),
                               "flops": sum(k["flops"] for k in low_k),
                               "bytes": sum(k["bytes"] for k in low_k)}
        acc = accelerator_cost(trace, cfg.hw, tech, "low")
        u = acc["units"]
        breakdown[("low", "gpu")] = low_step.scaled(low_steps)
        breakdown[("low", "systolic")] = u["systolic"]
        breakdown[("low", "reram")] = u["reram"]
        breakdown[("low", "movement")] = u["movement"]
        breakdown[("low", "host issue")] = u["host"]
        breakdown[("switch", "reram")] = u["reram_program"]
        out["overlap_s"] = acc["overlap_s"]
        out["offload_issues"] = acc["issues"]
    else:
        out["overlap_s"] = 0.0
    hpt = Cost()
    for c in breakdown.values():
        hpt = hpt + c
    hpt = Cost(hpt.seconds - out["overlap_s"], hpt.joules)
    out.update(
        gpu_only=gpu_only.to_dict(), hpt=hpt.to_dict(),
        speedup=gpu_only.seconds / hpt.seconds if hpt.seconds else None,
        energy_reduction=gpu_only.joules / hpt.joules if hpt.joules else None,
        breakdown=[{"phase": p, "unit": u, **c.to_dict()} for (p, u), c in breakdown.items()])
    rtl = rtl_check(trace)
    if rtl is not None:
        out["rtl_check"] = rtl
    gm = m.get("gpu_measured")
    if gm and gm.get("steps"):
        # calibrated: every GPU share scaled by measured / modelled (time, and energy
        # where NVML measured it) of the full-parameter steps
        out["gpu_measured"] = gm
        rt = gm["seconds"] / gm["steps"] / full_step.seconds
        re = gm["joules"] / gm["steps"] / full_step.joules if gm.get("joules") else 1.0
        cal = Cost()
        for (p, u), c in breakdown.items():
            cal = cal + (Cost(c.seconds * rt, c.joules * re) if u.startswith("gpu") else c)
        cal = Cost(cal.seconds - out["overlap_s"], cal.joules)
        only = Cost(gpu_only.seconds * rt, gpu_only.joules * re)
        out["calibrated"] = {"time_ratio": rt, "energy_ratio": re if gm.get("joules") else None,
                             "gpu_only": only.to_dict(), "hpt": cal.to_dict(),
                             "speedup": only.seconds / cal.seconds,
                             "energy_reduction": only.joules / cal.joules}
    return out
