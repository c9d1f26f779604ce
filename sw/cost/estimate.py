"""Runtime and energy of a training run, op by op over its trace.

A run is costed from what it recorded (``trace.json``, ``metrics.json``, ``config.json``)
and the one description of the accelerator it ran on (:class:`hw.manycore.ManycoreConfig`):

* **GPU** (the full-parameter phase; under the ``qv`` mapping also the host's share of
  the low phase): a roofline per dispatched kernel. :func:`profile_step` runs one real
  training step of the run's model and records every kernel's FLOPs and bytes
  (:mod:`sw.cost.opcount`); time is ``max(FLOPs / peak, bytes / bandwidth) + overhead``,
  energy that time at a power between the board's floor and its peak, by utilisation.
  The GPU's numbers come from a spec file (:data:`GPU_SPECS`, ``sw/cost/gpus.json``).
* **Systolic cores**: the cycle model (``SystolicConfig.matmul_cycles``: the overlapped
  core's :class:`hw.systolic.CoreTiming` over the product's program, equal to the RTL's)
  at the manycore's clock, products split
  over the cores (:func:`systolic_split_cycles`); energy per MAC and per SRAM byte.
* **ReRAM**: physical latencies, not the RTL's row-serial cycles: an MVM takes one
  crossbar read per input step, overlapped with the ADCs converting the previous one;
  copies of a matrix split the input vectors; energy for DACs, crossbar reads, ADC
  conversions and shift-add; programming costs write pulses (energy) and write-verify
  rounds (time); endurance is pulses per cell.
* **Vector unit** (``hpt`` mapping): element counts per kernel kind from the trace, priced
  per primitive (:data:`sw.cost.opcount.VECTOR_WORK`) at the unit's lanes and cycles.
* **Links**: under ``hpt`` every offloaded operand and result moves over the on-chip links
  (a vertical link and ``hops`` NoC hops); the host link carries the weights at the
  switch and each batch's inputs and targets. Under ``qv`` every offloaded op's operands
  and results cross the host link (PCIe and DRAM).
* **Static power** of every powered unit (the crossbars the placement uses, the systolic
  cores, vector units and routers) over the low phase's wall time; the GPU during the low
  phase either off (the headline) or idle at its floor.

The schedule the model assumes is :data:`SCHEDULE` (shown in every report). Every
technology constant lives in :data:`TECH`, with its unit and source; :func:`technology`
applies a user's overrides (a JSON file or ``name=value`` pairs).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Constant", "TECH", "GPU_SPECS", "SCHEDULE", "technology", "gpu_spec",
           "systolic_cycles", "systolic_split_cycles", "systolic_cost", "mvm_cost",
           "mvm_step_seconds", "program_cost", "movement_cost", "vector_cost",
           "onchip_cost", "static_watts", "gpu_kernel_cost", "gpu_step_cost", "profile_step",
           "accelerator_cost", "run_cost", "rtl_check", "Cost", "reram_group"]


@dataclass(frozen=True)
class Constant:
    value: float
    unit: str
    source: str


_H = "Horowitz, ISSCC 2014, 'Computing's energy problem', Fig. 1.1.9 (45 nm, 0.9 V)"
_I = "Shafiee et al., ISCA 2016 (ISAAC), Table 6 (32 nm)"
_N = "NeuroSim (Chen et al., TCAD 2018) RRAM defaults: 2 V write, 10 ns pulse, 6 kOhm LRS"

#: Technology constants. Override with ``technology({"name": value})`` or a JSON file.
#: (The hardware's own numbers, clocks, links, cores, replication, live in ManycoreConfig.)
TECH: dict[str, Constant] = {
    # ---- digital (systolic cores, vector units) ----------------------------------------
    "e_mult_int8_pj": Constant(0.2, "pJ", f"{_H}: 8-bit integer multiply"),
    "e_add_int32_pj": Constant(0.1, "pJ", f"{_H}: 32-bit integer add (the accumulation)"),
    "mult_energy_exponent": Constant(2.0, "", "assumption: multiplier energy grows with the "
                                     "square of the operand width (array multiplier)"),
    "e_sram_byte_pj": Constant(1.25, "pJ/B", f"{_H}: 8 KB SRAM, 64-bit read 10 pJ"),
    "e_fp32_add_pj": Constant(0.9, "pJ", f"{_H}: 32-bit float add (vector unit add, compare)"),
    "e_fp32_mult_pj": Constant(3.7, "pJ", f"{_H}: 32-bit float multiply"),
    "e_vector_special_pj": Constant(14.8, "pJ", "assumption: exp, reciprocal, rsqrt as four "
                                    "fp32 multiplies (polynomial / Newton steps)"),
    "vector_bytes_per_element": Constant(12.0, "B", "assumption: two fp32 operands read and "
                                         "one written per element, from the unit's SRAM"),
    # ---- ReRAM ---------------------------------------------------------------------------
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
    "endurance_cycles": Constant(1e6, "writes", "Wong et al., Proc. IEEE 2012 (metal-oxide "
                                 "RRAM): 1e6 to 1e12 reported; the conservative end"),
    # ---- static power --------------------------------------------------------------------
    "p_static_crossbar_w": Constant(3.4e-4, "W", f"assumption: 10 % of a crossbar's share of "
                                    f"an ISAAC tile (330 mW / 96 crossbars; {_I})"),
    "p_static_pe_w": Constant(6e-5, "W", "assumption: 10 % of a TPU-v1-class PE's power "
                              "(~40 W / 65,536 MACs, Jouppi et al., ISCA 2017)"),
    "p_static_vector_w": Constant(0.01, "W", "assumption: 10 mW leakage per vector unit"),
    "p_static_router_w": Constant(0.02, "W", "assumption: 20 mW per NoC router (one per "
                                  "ReRAM core and per systolic core; ORION 2.0-class estimates)"),
    # ---- host ----------------------------------------------------------------------------
    "gpu_op_overhead_s": Constant(50e-6, "s", "measured here (CUDA events): PyTorch 2.11 eager "
                                  "on an H100 host, 9.57 ms per 177-op tiny step and 50.7 ms per "
                                  "877-op paper-preset step, ~50 us per op beyond the roofline "
                                  "(Python, autograd, dispatch, launch; a bare launch is 3-10 us; "
                                  "CUDA-graph capture brings it to ~5 us)"),
    "offload_op_overhead_s": Constant(50e-6, "s", "assumption: the host issues an offloaded op "
                                      "(qv mapping), or one training step (hpt mapping), at the "
                                      "cost of a GPU op"),
}

GPU_SPECS = Path(__file__).with_name("gpus.json")

#: The schedule the cost model assumes (shown in every report).
SCHEDULE = (
    "ReRAM: the blocks of one matrix work at once; matrices that share an input (W_q, W_k, "
    "W_v of a layer) run at once on their own blocks, so their MVMs (and MVM_Ts) take the "
    "longest of the three; the copies of a matrix split each call's input vectors.",
    "Systolic: independent products (attention heads x batch, a concurrent group's LoRA "
    "products) are spread over the cores by hw.placement.assign_products, as the RTL chip "
    "runs them: whole products (longest first, to the least-loaded core) while there are at "
    "least as many as cores, else each product's output row tiles, then column tiles, over "
    "its share of the cores; a core runs its pieces one after another.",
    "Vector unit: every element-wise kernel is spread over all vector units' lanes.",
    "Overlap: the chip overlaps a LoRA layer's frozen MVM with its LoRA-A product (forward) "
    "and its MVM_T with the LoRA-B gradient products (backward); the credit per group is "
    "min(systolic time, that matrix's share of its ReRAM group time), never more.",
    "Links (hpt): activations move over the on-chip links (a vertical link and NoC hops) "
    "without overlap with compute; the host link carries the weights once at the switch and "
    "each batch's inputs and targets; the host issues one command per training step.",
    "Links (qv): every offloaded op's operands and results cross the host link (PCIe, "
    "through DRAM); the host issues every offloaded op (or concurrent group).",
    "Static power: the crossbars that hold weights (empty ones power-gated), every systolic "
    "core, vector unit and router, over the low phase's wall time; the manycore is off "
    "during the full phase. The GPU during the low phase: off (headline) or idle at its floor.",
    "Programming at the switch: the ReRAM tiles program in parallel, each its own blocks one "
    "after another (write-verify of a block row at a time); every copy costs its pulses.",
)


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


# ---- systolic cores ------------------------------------------------------------------------
def systolic_cycles(sa, batch: int, m: int, k: int, n: int) -> int:
    """Cycles of ``batch`` (m x k) @ (k x n) products on one core ``sa``: the cycle model
    of the tiled program, which the RTL meets exactly (tests/cosim/test_cycle_model.py)."""
    return batch * sa.matmul_cycles(m, k, n)


@functools.lru_cache(maxsize=65536)
def systolic_split_cycles(sa, cores: int, batch: int, m: int, k: int, n: int) -> int:
    """Cycles of ``batch`` equal products spread over ``cores`` cores by
    :func:`hw.placement.assign_products` (the rule the RTL device follows): the busiest
    core's. With at least as many products as cores that is round-robin, so the closed form
    ``ceil(batch / cores)`` products' cycles (tests/cosim/test_cycle_model.py checks it against the
    assignment); with fewer, the pieces of the assignment."""
    if batch >= cores:
        return math.ceil(batch / cores) * sa.matmul_cycles(m, k, n)
    from hw.placement import assign_products, core_loads
    return max(core_loads(assign_products(sa, cores, [(m, k, n)] * batch)))


def systolic_cost(sa, tech: dict, batch: int, m: int, k: int, n: int, *,
                  clock_hz: float, cores: int = 1) -> Cost:
    """``batch`` products (m x k) @ (k x n) on ``cores`` cores ``sa`` at ``clock_hz``:
    cycles from the cycle model (:func:`systolic_split_cycles`); energy = MACs x
    (multiply + 32-bit add) + SRAM bytes (operands read once per output tile that needs
    them, results written once), the same however the work is split."""
    cycles = systolic_split_cycles(sa, cores, batch, m, k, n)
    macs = batch * m * k * n
    tm, tn = math.ceil(m / sa.rows), math.ceil(n / sa.cols)
    in_b, acc_b = sa.in_width / 8, sa.acc_width / 8
    sram = batch * (in_b * (m * k * tn + k * n * tm) + acc_b * m * n)
    e_mult = tech["e_mult_int8_pj"] * (sa.in_width / 8) ** tech["mult_energy_exponent"]
    pj = macs * (e_mult + tech["e_add_int32_pj"]) + sram * tech["e_sram_byte_pj"]
    return Cost(cycles / clock_hz, pj * 1e-12)


# ---- ReRAM ---------------------------------------------------------------------------------
def mvm_step_seconds(tile, tech: dict, transpose: bool = False) -> float:
    """One input step of an MVM on one block: a crossbar read, pipelined with the ADCs
    converting the previous step's outputs (whichever is slower sets the pace)."""
    outputs = tile.rows if transpose else tile.cols
    convert = outputs / (tech["adcs_per_slice"] * tech["adc_rate_hz"])
    return max(tech["xbar_read_s"], convert)


def mvm_cost(tile, tech: dict, vectors: int, tiles: int, transpose: bool = False, *,
             calls: int = 1, copies: int = 1) -> Cost:
    """``calls`` calls of ``vectors`` input vectors each through a matrix of ``tiles``
    blocks (all at once), held in ``copies`` copies that split each call's vectors.
    Energy: per crossbar activation (input step x crossbar: weight slices, twice that with
    differential encoding) the read and one DAC per driven line; per conversion (one per
    slice: a differential pair is subtracted before its ADC) the ADC (energy x 2^(bits - ref bits), Walden scaling) and
    a shift-add. Time: ceil(vectors / copies) x input steps x step time, per call."""
    lines_in = tile.cols if transpose else tile.rows
    per_vec_tile_reads = tile.crossbar_reads()
    per_vec_tile_conv = tile.mvm_adc_conversions(transpose)
    steps = tile.input_steps
    e_adc = tech["e_adc_pj"] * 2.0 ** (tile.adc_bits - tech["adc_ref_bits"])
    pj = calls * vectors * tiles * (
        per_vec_tile_reads * (tech["e_xbar_read_pj"] + lines_in * tech["e_dac_pj"])
        + per_vec_tile_conv * (e_adc + tech["e_shift_add_pj"]))
    seconds = calls * math.ceil(vectors / max(copies, 1)) * steps \
        * mvm_step_seconds(tile, tech, transpose)
    return Cost(seconds, pj * 1e-12)


def program_cost(tile, tech: dict, rows: int, pulses: int, *, copies: int = 1,
                 serial_blocks: int | None = None) -> Cost:
    """Write-verify programming of ``rows`` crossbar rows (of every block of one copy) with
    ``pulses`` write pulses in all, times ``copies``. Every pulse costs its energy; a row
    takes up to ``verify_iters`` rounds of a pulse and a verify read (the cells of a row in
    parallel, on every crossbar of the block: a verify read is one read per crossbar; the
    bound is the time). ``serial_blocks``: blocks programmed one after another (the most
    any ReRAM tile holds; tiles program in parallel); default all."""
    per_row = tile.verify_iters * (tech["write_pulse_s"] + tech["xbar_read_s"])
    verify_reads = rows * tile.verify_iters * tile.crossbars
    pj = pulses * tech["e_write_pulse_pj"] + verify_reads * tech["e_xbar_read_pj"]
    serial_rows = rows * copies if serial_blocks is None else serial_blocks * tile.rows
    return Cost(serial_rows * per_row, pj * 1e-12 * copies)


# ---- vector unit, links, static ------------------------------------------------------------
def vector_cost(hw, tech: dict, kind: str, elements: int) -> Cost:
    """``elements`` elements of kernel ``kind`` on all vector units (``systolic_cores`` x
    ``lanes``): per element the primitives of :func:`sw.cost.opcount.vector_primitives`, each
    at its cycles, plus the unit's SRAM traffic."""
    from sw.cost.opcount import vector_primitives
    prims = vector_primitives(kind)
    cycles = elements * sum(n * hw.vector.cycles_of(p) for p, n in prims.items()) \
        / (hw.vector.lanes * hw.systolic_cores)
    e = {"add": tech["e_fp32_add_pj"], "cmp": tech["e_fp32_add_pj"],
         "mul": tech["e_fp32_mult_pj"], "exp": tech["e_vector_special_pj"],
         "reciprocal": tech["e_vector_special_pj"], "rsqrt": tech["e_vector_special_pj"]}
    pj = elements * (sum(n * e[p] for p, n in prims.items())
                     + tech["vector_bytes_per_element"] * tech["e_sram_byte_pj"])
    return Cost(cycles / hw.clock_hz, pj * 1e-12)


def onchip_cost(links, nbytes: float) -> Cost:
    """Bytes over the on-chip links (a vertical link and ``hops`` NoC hops)."""
    return Cost(links.onchip_seconds(nbytes), nbytes * links.onchip_pj_per_byte() * 1e-12)


def movement_cost(links, nbytes: float) -> Cost:
    """Bytes over the host link (PCIe, through DRAM)."""
    return Cost(nbytes / links.host_bw_bytes_s, nbytes * links.e_host_pj_byte * 1e-12)


def static_watts(hw, tech: dict, crossbars_used: int) -> dict:
    """Static power of the powered manycore, per kind of unit."""
    return {"crossbars": crossbars_used * tech["p_static_crossbar_w"],
            "systolic": hw.systolic_cores * hw.systolic.rows * hw.systolic.cols
            * tech["p_static_pe_w"],
            "vector": hw.systolic_cores * tech["p_static_vector_w"],
            "routers": (hw.reram_cores + hw.systolic_cores) * tech["p_static_router_w"]}


# ---- GPU -----------------------------------------------------------------------------------
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


_PROFILES: dict = {}


def profile_step(run_cfg, phase: str, ranks=None) -> list[dict]:
    """:func:`_profile_step`, computed once per configuration, phase and ranks in a
    process (re-costing a run under other constants does not profile it again)."""
    key = json.dumps([run_cfg.to_dict(), phase, ranks], sort_keys=True, default=str)
    if key not in _PROFILES:
        _PROFILES[key] = _profile_step(run_cfg, phase, ranks)
    return [dict(k) for k in _PROFILES[key]]


def _profile_step(run_cfg, phase: str, ranks=None) -> list[dict]:
    """Kernels of one training step (forward, backward, optimizer) of ``run_cfg``'s model
    in ``phase`` ("full"; "low" with LoRA ``ranks`` under the run's mapping; "trial": the
    paper policy's LoRA copy, all on the GPU; "eval": one batch's forward pass of the full
    model in evaluation mode, as the headroom policy's held-out checks run it):
    ``{"op", "flops", "bytes"}`` per dispatched kernel (views launch nothing and are left
    out). In the low phase the offloaded products are not GPU kernels and are left out."""
    import torch

    from sw.device.backends import TorchBackend
    from sw.data import load
    from sw.model.hybrid import apply_lora, set_backend
    from sw.model.transformer import SpatialTransformer
    from sw.cost.opcount import KernelCounter

    torch.manual_seed(0)
    data = load(run_cfg.data)
    model = SpatialTransformer.for_data(run_cfg.model, data)
    backend = None
    if phase in ("low", "trial"):
        apply_lora(model, dict(enumerate(ranks)), alpha=run_cfg.policy.lora_alpha,
                   dropout=run_cfg.policy.lora_dropout, targets=run_cfg.policy.lora_targets)
    if phase == "low":
        backend = TorchBackend(run_cfg.hw)
        set_backend(model, backend, mapping=run_cfg.train.mapping)
    params = [p for p in model.parameters() if p.requires_grad]
    # foreach: the multi-tensor kernels PyTorch uses on CUDA by default
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=run_cfg.train.weight_decay,
                            foreach=True)
    b = run_cfg.train.batch
    X = torch.from_numpy(data.train.X[:b])
    y = torch.from_numpy(data.train.y[:b])
    model.train(phase != "eval")
    rows = []
    skip = (lambda: backend.offloading > 0) if backend is not None else None
    with KernelCounter(lambda name, flops, nbytes, elements: rows.append(
            {"op": name, "flops": flops, "bytes": nbytes}), skip):
        if phase == "eval":
            with torch.no_grad():
                torch.nn.functional.mse_loss(model(X), y)
            return rows
        loss = torch.nn.functional.mse_loss(model(X), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return rows


def gpu_step_cost(kernels: list[dict], spec: dict, tech: dict, dtype: str = "fp32") -> Cost:
    total = Cost()
    for k in kernels:
        total = total + gpu_kernel_cost(spec, tech, k["flops"], k["bytes"], dtype)
    return total


# ---- a whole run ---------------------------------------------------------------------------
def _op_bytes(row, hw) -> float:
    """Operand and result bytes of one trace row (all its calls)."""
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


def reram_group(matrix: str) -> str:
    """The concurrency group of a frozen matrix (:data:`SCHEDULE`): W_q, W_k and W_v of a
    layer share their input and run at once; every other matrix is its own group."""
    head, _, last = matrix.rpartition(".")
    return f"{head}.qkv" if head.endswith("attn") and last in ("q", "k", "v") else matrix


def _placement(trace, hw, phase):
    shapes = {}
    for r in trace:
        if r["phase"] == phase and r["unit"] == "reram" and r["op"] == "program":
            shapes[r["layer"]] = tuple(r["shape"])
    if not shapes:
        return None
    # the placement depends on the blocks' shape and the ReRAM's capacity only: manycores
    # that differ elsewhere (systolic tier, links, ADC) share it
    t = hw.tile
    key = (t.rows, t.cols, t.crossbars, hw.reram_cores, hw.tiles_per_core,
           hw.crossbars_per_tile, hw.replication, tuple(shapes.items()))
    hit = _PLACEMENTS.get(key)
    if hit is None:
        from hw.placement import place
        p = place(hw, shapes)
        hit = _PLACEMENTS[key] = (p, p.to_dict(), p.crossbars_used)
        if len(_PLACEMENTS) > 4096:
            _PLACEMENTS.pop(next(iter(_PLACEMENTS)))
    return hit


_PLACEMENTS: dict = {}


@functools.lru_cache(maxsize=65536)
def _group_cycles(sa, cores: int, products: tuple) -> int:
    """The busiest core's cycles of a concurrent group's systolic products
    (``((m, k, n, count), ...)``) spread over ``cores`` cores ``sa``."""
    from hw.placement import assign_products, core_loads
    shapes = [(m, k, n) for m, k, n, c in products for _ in range(c)]
    return max(core_loads(assign_products(sa, cores, shapes))) if shapes else 0


def _program_row(r: dict, t, trained_tile, grid) -> tuple[int, float]:
    """(crossbar rows, write pulses) of a trace's ``program`` row on tile ``t``: as
    recorded when ``t`` is the tile the run was traced on; otherwise re-tiled from the
    matrix's shape (``grid`` blocks of ``t``), with the recorded mean pulses per cell
    (the device's write-verify statistics) times the cells of the new tiling."""
    if trained_tile is None or t == trained_tile:
        return r["rows"], r["write_pulses"]
    tr, tc = grid
    rows = tr * tc * t.rows
    old_cells = r["rows"] * trained_tile.cols * trained_tile.lanes
    return rows, r["write_pulses"] / old_cells * rows * t.cols * t.lanes


def _concurrent_overlap(trace, phase, hw, tech, copies, group_size, trained_hw):
    """What concurrent groups take off the time: per group, min(its systolic time, the
    matrix's share of its ReRAM group's time); and how many offload issues the groups
    merge (one issue per group instead of one per member)."""
    overlap_s, merged, t = 0.0, 0, hw.tile
    for r in trace:
        if r["phase"] != phase or r["unit"] != "chip" or r["op"] != "concurrent":
            continue
        matrix = r["layer"].rsplit(".", 1)[0]
        op = "mvm_t" if r["layer"].endswith(".bwd") else "mvm"
        key = (reram_group(matrix), op)
        # the group's systolic time: the busiest core's cycles when the trace was taken on
        # this many cores; else its one-core work split evenly (a trace records the
        # group's products' cycles, not their shapes)
        per_core = r.get("systolic_model_cores") or [r["systolic_model"]]
        if "products" in r:                   # re-split on this manycore's cores
            prods = tuple(tuple(p) for p in r["products"])
            sa_s = r["count"] * _group_cycles(hw.systolic, hw.systolic_cores, prods) \
                / hw.clock_hz
        elif trained_hw is not None and hw.systolic != trained_hw.systolic:
            raise ValueError(f"concurrent group {r['layer']!r}: the trace predates product "
                             "shapes, so it cannot be costed on another systolic array; "
                             "train the run again")
        elif len(per_core) == hw.systolic_cores:
            sa_s = r["systolic_model"] / hw.clock_hz
        else:       # an older trace: its one-core work split evenly
            sa_s = r.get("systolic_work", r["systolic_model"]) / hw.clock_hz / hw.systolic_cores
        n_vec = r.get("mvm_vectors", 0)
        tile_s = r["count"] * math.ceil(n_vec / copies) * t.input_steps \
            * mvm_step_seconds(t, tech, op == "mvm_t") / group_size.get(key, 1)
        overlap_s += min(sa_s, tile_s)
        merged += r["count"] * (r["shape"][0] - 1)
    return overlap_s, merged


def accelerator_cost(trace: list[dict], hw, tech: dict, phase: str = "low",
                     mapping: str = "qv", trained_hw=None) -> dict:
    """Costs of the accelerator's work in ``phase`` of a trace, per unit, under the
    schedule of :data:`SCHEDULE`; ``overlap_s`` is what concurrent groups take off the
    time (not the energy). ``trained_hw``: the manycore the trace was taken on, when
    ``hw`` is another (the work is re-tiled from the trace's shapes: matrices into
    ``hw``'s blocks, products over its cores and arrays)."""
    units = {k: Cost() for k in ("systolic", "reram", "reram_program", "vector", "links",
                                 "movement", "host")}
    t = hw.tile
    placed = _placement(trace, hw, phase)
    placement = placed[0] if placed is not None else None
    copies = placement.copies if placement is not None else 1
    vector_elements: dict = {}
    # ReRAM: per (group, op) the longest member (members run at once)
    groups: dict = {}
    group_size: dict = {}
    issues = 0
    host_bytes = 0.0
    for r in trace:
        if r["phase"] != phase:
            continue
        if r["unit"] == "systolic":
            batch, m, k, n = r["shape"]
            units["systolic"] += systolic_cost(hw.systolic, tech, batch, m, k, n,
                                               clock_hz=hw.clock_hz,
                                               cores=hw.systolic_cores).scaled(r["count"])
        elif r["unit"] == "reram" and r["op"] == "program":
            # energy per matrix; the time once, below (the tiles program in parallel)
            rows, pulses = _program_row(r, t, trained_hw.tile if trained_hw else None,
                                        hw.tile_grid(r["shape"]))
            units["reram_program"] += Cost(0.0, program_cost(
                t, tech, rows, pulses, copies=copies).joules)
            host_bytes += _op_bytes(r, hw)
            continue
        elif r["unit"] == "reram":
            n_vec, rows, cols = r["shape"]
            tr, tc = hw.tile_grid((rows, cols))
            c = mvm_cost(t, tech, n_vec, tr * tc, transpose=r["op"] == "mvm_t",
                         calls=r["count"], copies=copies)
            key = (reram_group(r["layer"]), r["op"])
            prev = groups.get(key, Cost())
            groups[key] = Cost(max(prev.seconds, c.seconds), prev.joules + c.joules)
            group_size[key] = group_size.get(key, 0) + 1
        elif r["unit"] == "vector":            # linear in elements: one cost per kind
            vector_elements[r["op"]] = vector_elements.get(r["op"], 0) + r["elements"]
            continue
        if r["unit"] in ("systolic", "reram"):
            if mapping == "hpt":
                units["links"] += onchip_cost(hw.links, _op_bytes(r, hw))
            else:
                units["movement"] += movement_cost(hw.links, _op_bytes(r, hw))
                issues += r["count"]
    for c in groups.values():
        units["reram"] += c
    for kind, elements in vector_elements.items():
        units["vector"] += vector_cost(hw, tech, kind, elements)
    if placement is not None:
        busiest = min(placement.blocks_used, hw.blocks_per_tile)   # blocks fill tiles in order
        units["reram_program"] += Cost(program_cost(t, tech, t.rows, 0,
                                                    serial_blocks=busiest).seconds, 0.0)
    overlap_s, merged = _concurrent_overlap(trace, phase, hw, tech, copies, group_size,
                                            trained_hw)
    if mapping != "hpt":
        issues -= merged                                      # one issue per group
    units["host"] = Cost(issues * tech["offload_op_overhead_s"], 0.0)
    return {"units": units, "overlap_s": overlap_s, "issues": issues,
            "host_switch_bytes": host_bytes, "copies": copies,
            "placement": placed[1] if placed is not None else None,
            "crossbars_used": placed[2] if placed is not None else 0}


def rtl_check(trace: list[dict]) -> dict | None:
    """For a co-simulated run: the systolic cores' RTL cycles against the cycle model the
    cost model uses. Standalone products: RTL cycles less one harness cycle per run (the
    busiest core's, as the model). Concurrent groups: every core's active cycles against
    that core's share under :func:`hw.placement.assign_products` (summed here; ``equal``
    also needs each core to match)."""
    rtl = model = 0
    seen, per_core_equal = False, True
    for r in trace:
        if r["unit"] == "systolic" and "rtl_cycles" in r:
            rtl += r["rtl_cycles"] - r["rtl_runs"]
            model += r["cycles_model"]
            seen = True
        elif r["unit"] == "chip" and "rtl_systolic_active" in r:
            got = r.get("rtl_systolic_active_cores") or [r["rtl_systolic_active"]]
            want = r.get("systolic_model_cores") or [r["systolic_model"]]
            per_core_equal &= got == want
            rtl += sum(got)
            model += sum(want)
            seen = True
    if not seen:
        return None
    return {"systolic_rtl_cycles": rtl, "systolic_model_cycles": model,
            "equal": rtl == model and per_core_equal}


def _low_phase_cost(out, breakdown, cfg, m, trace, hw, prices, trained_hw, batch_bytes,
                    state_bytes):
    """Adds the switch and the low phase to ``breakdown`` (and their details to ``out``)
    under the run's mapping; returns the low phase's seconds (switch included, overlap
    removed). ``prices``: (GPU spec, technology constants, dtype); ``state_bytes``: the
    frozen state besides the programmed matrices that the switch moves (hpt mapping)."""
    spec, tech, dtype = prices
    mapping = cfg.train.mapping
    low_steps = out["low_steps"]
    acc = accelerator_cost(trace, hw, tech, "low", mapping, trained_hw=trained_hw)
    u = acc["units"]
    if mapping == "qv":
        low_k = profile_step(cfg, "low", m["ranks"])
        low_step = _gpu_step_cached(cfg, "low", m["ranks"], spec, tech, dtype)
        out["gpu_low_step"] = {**low_step.to_dict(), "kernels": len(low_k),
                               "flops": sum(k["flops"] for k in low_k),
                               "bytes": sum(k["bytes"] for k in low_k)}
        breakdown[("low", "gpu")] = low_step.scaled(low_steps)
    breakdown[("low", "systolic")] = u["systolic"]
    breakdown[("low", "reram")] = u["reram"]
    if mapping == "hpt":
        breakdown[("low", "vector")] = u["vector"]
        breakdown[("low", "links")] = u["links"]
        breakdown[("low", "host link")] = movement_cost(hw.links, batch_bytes)
        breakdown[("low", "host issue")] = Cost(low_steps * tech["offload_op_overhead_s"], 0)
        out["switch_state_bytes"] = state_bytes
        breakdown[("switch", "host link")] = movement_cost(
            hw.links, acc["host_switch_bytes"] + state_bytes)
    else:
        breakdown[("low", "movement")] = u["movement"]
        breakdown[("low", "host issue")] = u["host"]
    breakdown[("switch", "reram")] = u["reram_program"]
    out["overlap_s"] = acc["overlap_s"]
    out["offload_issues"] = acc["issues"]
    out["placement"] = acc["placement"]
    low_s = sum(c.seconds for (p, _), c in breakdown.items() if p in ("low", "switch")) \
        - out["overlap_s"]
    watts = static_watts(hw, tech, acc["crossbars_used"])
    out["static_w"] = watts
    breakdown[("low", "static")] = Cost(0.0, sum(watts.values()) * low_s)
    # the GPU idling at its floor while the manycore works (hpt: the whole low phase;
    # qv: the low phase less the GPU's own kernels, whose energy is already counted)
    gpu_busy = breakdown.get(("low", "gpu"), Cost()).seconds
    out["gpu_idle_low_j"] = spec["floor_w"] * max(low_s - gpu_busy, 0.0)
    return low_s


def _calibrated(breakdown, gm, full_step, gpu_only, overlap_s) -> dict:
    """Every GPU share scaled by measured / modelled (time, and energy where NVML measured
    it) of the full-parameter steps ``gm``."""
    rt = gm["seconds"] / gm["steps"] / full_step.seconds
    re = gm["joules"] / gm["steps"] / full_step.joules if gm.get("joules") else 1.0
    cal = Cost()
    for (p, u), c in breakdown.items():
        cal = cal + (Cost(c.seconds * rt, c.joules * re) if u.startswith("gpu") else c)
    cal = Cost(cal.seconds - overlap_s, cal.joules)
    only = Cost(gpu_only.seconds * rt, gpu_only.joules * re)
    return {"time_ratio": rt, "energy_ratio": re if gm.get("joules") else None,
            "gpu_only": only.to_dict(), "hpt": cal.to_dict(),
            "speedup": only.seconds / cal.seconds, "energy_reduction": only.joules / cal.joules}


def run_cost(run_dir: Path, spec: dict, tech: dict, dtype: str = "fp32", hw=None) -> dict:
    """Time and energy of a run as executed (HpT: GPU full phase, the switch, the low phase
    on the manycore under the run's mapping) and of GPU-only full-parameter training of
    the same number of steps. ``hw``: cost on this ManycoreConfig instead of the run's.
    Per-epoch evaluation passes are left out of both; the held-out evaluations of the
    headroom and branch policies are HpT's work and charged to its full phase."""
    run_dir = Path(run_dir)
    cfg, m, trace, trials, held_out_batches, batch_bytes, state_bytes = _load_run(run_dir)
    trained_hw = cfg.hw if hw is not None and hw != cfg.hw else None
    hw = hw or cfg.hw
    mapping = cfg.train.mapping
    total = m["total_steps"]
    switch = m["switch_step"] if m["switch_step"] is not None else total
    low_steps = total - switch
    full_k = profile_step(cfg, "full")
    full_step = _gpu_step_cached(cfg, "full", None, spec, tech, dtype)
    out = {"run": str(run_dir), "app": cfg.data.app, "policy": cfg.policy.name,
           "mapping": mapping, "preset": _preset_name(cfg.model),
           "backend": cfg.train.backend, "total_steps": total, "switch_step": m["switch_step"],
           "low_steps": low_steps, "low_param_fraction": low_steps / max(total, 1),
           "test_mse": m["test_mse"], "manycore": _hw_dict(hw),
           "gpu_full_step": {**full_step.to_dict(), "kernels": len(full_k),
                             "flops": sum(k["flops"] for k in full_k),
                             "bytes": sum(k["bytes"] for k in full_k)}}
    f = out["low_param_fraction"]
    out["ceiling"] = 1.0 / (1.0 - f) if f < 1 else None
    gpu_only = full_step.scaled(total)
    breakdown = {("full", "gpu"): full_step.scaled(switch)}
    # the paper, early and branch policies train a LoRA copy beside the full model per
    # trial (paper, early: k iterations; branch: as logged)
    out["trial_steps"] = sum(e.get("trial_steps", cfg.policy.interval) for e in trials)
    ranks = m["ranks"] or [cfg.policy.lora_rank] * cfg.model.layers
    if trials:
        trial_step = _gpu_step_cached(cfg, "trial", ranks, spec, tech, dtype)
        breakdown[("full", "gpu LoRA trial")] = trial_step.scaled(out["trial_steps"])
    # headroom and branch evaluate the full model (branch: and its copy) on held-out windows
    out["held_out_batches"] = held_out_batches
    if held_out_batches:
        eval_batch = _gpu_step_cached(cfg, "eval", None, spec, tech, dtype)
        breakdown[("full", "gpu policy held-out evaluation")] = eval_batch.scaled(held_out_batches)
    out["overlap_s"] = 0.0
    low_s = 0.0
    if low_steps > 0 or m["switch_step"] is not None:
        low_s = _low_phase_cost(out, breakdown, cfg, m, trace, hw, (spec, tech, dtype),
                                trained_hw, batch_bytes, state_bytes)
    hpt = Cost()
    for c in breakdown.values():
        hpt = hpt + c
    hpt = Cost(hpt.seconds - out["overlap_s"], hpt.joules)
    out.update(
        gpu_only=gpu_only.to_dict(), hpt=hpt.to_dict(),
        speedup=gpu_only.seconds / hpt.seconds if hpt.seconds else None,
        energy_reduction=gpu_only.joules / hpt.joules if hpt.joules else None,
        energy_reduction_gpu_idle=(gpu_only.joules / (hpt.joules + out.get("gpu_idle_low_j", 0))
                                   if hpt.joules else None),
        breakdown=[{"phase": p, "unit": u, **c.to_dict()} for (p, u), c in breakdown.items()])
    if low_steps > 0:
        low = Cost(low_s, sum(c.joules for (p, _), c in breakdown.items() if p == "low"))
        out["low_step"] = low.scaled(1 / low_steps).to_dict()
        out["step_speedup"] = full_step.seconds / out["low_step"]["seconds"]
        out["step_energy_reduction"] = full_step.joules / out["low_step"]["joules"]
    rtl = rtl_check(trace)
    if rtl is not None:
        out["rtl_check"] = rtl
    gm = m.get("gpu_measured")
    if gm and gm.get("steps"):
        out["gpu_measured"] = gm
        out["calibrated"] = _calibrated(breakdown, gm, full_step, gpu_only, out["overlap_s"])
    return out


_GPU_STEPS: dict = {}


def _gpu_step_cached(cfg, phase: str, ranks, spec: dict, tech: dict, dtype: str) -> Cost:
    """:func:`gpu_step_cost` of :func:`profile_step`, once per run, phase, GPU, constants
    and dtype in a process (a cost sweep prices the same GPU steps at every point)."""
    key = (cfg, phase, json.dumps(ranks), json.dumps(spec, sort_keys=True),
           json.dumps(tech, sort_keys=True), dtype)        # RunConfig is frozen: hashable
    if key not in _GPU_STEPS:
        _GPU_STEPS[key] = gpu_step_cost(profile_step(cfg, phase, ranks), spec, tech, dtype)
        if len(_GPU_STEPS) > 1024:
            _GPU_STEPS.pop(next(iter(_GPU_STEPS)))
    return _GPU_STEPS[key]


@functools.lru_cache(maxsize=4096)
def _hw_dict(hw) -> dict:
    return hw.to_dict()


def _load_run(run_dir: Path):
    """(config, metrics, trace, policy trials, batches of the policy's held-out
    evaluations, low-phase batch bytes, switch state bytes) of a finished run,
    read once per process while its files are unchanged (a cost sweep re-costs one run
    under thousands of configurations)."""
    files = [run_dir / n for n in ("config.json", "metrics.json", "trace.json", "history.json")]
    stamp = tuple(f.stat().st_mtime_ns if f.is_file() else None for f in files)
    return _load_run_cached(str(run_dir.resolve()), stamp)


@functools.lru_cache(maxsize=64)
def _load_run_cached(run_dir: str, stamp: tuple):
    from sw.train.trainer import RunConfig
    d = Path(run_dir)
    cfg = RunConfig.from_dict(json.loads((d / "config.json").read_text()))
    m = json.loads((d / "metrics.json").read_text())
    trace = json.loads((d / "trace.json").read_text())
    hist = d / "history.json"
    log = json.loads(hist.read_text()).get("policy", []) if hist.is_file() else []
    trials = [e for e in log if "trial" in e]
    held_out = sum(e.get("held_out_batches", 0) for e in log)
    hpt = cfg.train.mapping == "hpt"
    batch_bytes = _batch_bytes(cfg, trace) if hpt else 0.0
    state_bytes = _switch_state_bytes(cfg) if hpt else 0.0
    return cfg, m, trace, trials, held_out, batch_bytes, state_bytes


def _switch_state_bytes(cfg) -> float:
    """fp32 bytes of the frozen state that the switch moves to the manycore besides the
    matrices programmed into ReRAM: every layer's attention bias (``ModelConfig.attn_bias``),
    which the vector units add to the scores (kept in their buffers; not modelled as
    storage)."""
    if not cfg.model.attn_bias:
        return 0.0
    from sw.data import load
    from sw.model.transformer import station_bias_shape
    return 4.0 * cfg.model.layers * math.prod(station_bias_shape(cfg.model,
                                                                 load(cfg.data).stations))


def _batch_bytes(cfg, trace) -> float:
    """Inputs and targets of every low-phase batch (fp32), over the host link: the
    element counts of the loss kernel give the targets; inputs scale by the features."""
    from sw.data import load
    data = load(cfg.data)
    per_target = 4 * (1 + data.n_features)          # one target + its station's features
    targets = sum(r["elements"] for r in trace if r["phase"] == "low"
                  and r["unit"] in ("vector", "gpu") and r["op"] == "mse_loss")
    return targets * per_target


def _preset_name(model_cfg) -> str:
    """The preset the model's sizes are, with ``+attn-bias`` when it has the bias."""
    from sw.model.transformer import PRESETS
    extra = "+attn-bias" if model_cfg.attn_bias else ""
    for name, p in PRESETS.items():
        if all(getattr(model_cfg, k) == v for k, v in p.items()):
            return name + extra
    return "custom" + extra
