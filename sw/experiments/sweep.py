"""Design-space sweeps (``hpt sweep``): grids of training runs or of hardware points, run
on :mod:`sw.experiments.engine` (Ray by default), with a Pareto front and sensitivity plots.

**A spec** names fixed settings and axes (a TOML file, or ``--axis``/``--fixed`` on the
command line)::

    name = "adc-vs-array"
    kind = "cost"                      # cost | train
    runs = ["build/runs/wind"]         # cost: finished runs to re-cost (an axis of its own)
    [fixed]
    gpu = "A100-SXM4-80GB"
    [axes]
    "tile.adc_bits" = [6, 8, 9]
    "systolic.rows" = [8, 16]
    "tech.adc_rate_hz" = [1.28e9, 2.56e9]

A setting's name is one of:

* a run setting (train sweeps): ``app``, ``policy``, ``seed`` (data and training),
  ``preset``, ``backend``, ``mapping``, ``epochs``, ``horizon``, ``switch_at``, or any
  field of the run's sub-configurations, dotted: ``data.steps``, ``train.lr``,
  ``policy.k``, ``model.layers``;
* ``manycore`` (the preset every point starts from; cost sweeps: default each run's own
  manycore) and any :class:`hw.manycore.ManycoreConfig` field as ``--hw`` takes it:
  ``systolic_cores``, ``replication``, ``tile.adc_bits``, ``systolic.rows``,
  ``links.hops`` ...;
* a technology constant, ``tech.NAME`` (:data:`sw.cost.estimate.TECH`), ``gpu`` and ``dtype``.

Every value is checked before anything runs: an unknown name or a bad value is one error
naming the axis and the value; then every point resolves to a full, validated
configuration, identified by the hash of that configuration (:func:`point_key`).

**Two kinds of work.** A *train* point is a training run (folder ``runs/<app>_<policy>_
<hash>``, resumable) and its cost on its own manycore; it carries its test MSE. A *cost*
point re-costs a finished run's trace on other hardware or constants without training
(:func:`sw.cost.estimate.run_cost` re-tiles the trace's matrices and products); it cannot know
its test MSE and carries instead, **as a quality proxy**, its tile configuration's MVM
error from the fidelity model (:func:`sw.device.fidelity.errors`: the error the tile adds to
the int8 product, Gaussian W and x).

**Reuse and failures.** Finished points are kept in ``results.jsonl`` (and training runs
in their folders); a re-run does only what is missing. A point whose run fails or whose
worker dies is retried (``retries``), then reported with its log (``logs/<key>.log``);
the sweep completes without it. A configuration that cannot hold the model (its frozen
weights do not fit the ReRAM) is *infeasible*: reported, not retried.

**Outputs** (``build/sweeps/<name>/``): ``points.csv`` and ``points.json`` (one row per
point), ``pareto.png`` (speedup against energy reduction, coloured by quality loss, the
front marked), ``sensitivity.png`` (one axis at a time), ``summary.md`` (the front's
configurations).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import json
import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SweepSpec", "SpecError", "load_spec", "parse_axis", "resolve", "run_sweep",
           "point_key", "pareto_front", "KINDS"]

KINDS = ("cost", "train")

#: Run settings with a short name: (the sub-configuration, its field); ``seed`` sets
#: both the data's and the training's seed, as ``hpt train --seed`` does.
RUN_SETTINGS = {"app": ("data", "app"), "horizon": ("data", "horizon"),
                "backend": ("train", "backend"), "mapping": ("train", "mapping"),
                "epochs": ("train", "epochs"), "switch_at": ("policy", "switch_at"),
                "policy": None, "seed": None, "preset": None}
SUB_CONFIGS = ("data", "train", "policy", "model")
COST_SETTINGS = ("gpu", "dtype", "manycore")
TRAIN_DEFAULTS = {"app": "wind", "policy": "paper", "seed": 0, "preset": "tiny",
                  "backend": "torch", "mapping": "hpt", "epochs": 20, "manycore": "atleus"}
#: backends a sweep trains with (``rtl`` co-simulates one chip per run; use hpt train)
SWEEP_BACKENDS = ("torch", "functional")


class SpecError(ValueError):
    """A sweep spec that cannot run; raised before any point runs."""


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``kind``, fixed settings, and axes ``((name, values), ...)`` in order (the
    grid is their product). ``runs``: a cost sweep's finished runs."""
    name: str
    kind: str
    axes: tuple = ()
    fixed: dict = field(default_factory=dict)
    runs: tuple = ()
    retries: int = 2
    vectors: int = 16           # cost: input vectors of the fidelity proxy
    gpu_specs: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SpecError(f"sweep kind must be one of {KINDS}, not {self.kind!r}")
        if not self.name or any(c in self.name for c in "/\\") or self.name.startswith("."):
            raise SpecError(f"sweep name {self.name!r} must be a plain folder name")
        names = [a for a, _ in self.axes]
        dup = {a for a in names if names.count(a) > 1} | (set(names) & set(self.fixed))
        if dup:
            raise SpecError(f"setting {sorted(dup)[0]!r} is given twice (axes and fixed)")
        for a, values in self.axes:
            if not isinstance(values, (list, tuple)) or not values:
                raise SpecError(f"axis {a!r}: needs a non-empty list of values, not {values!r}")
        if self.kind == "cost" and not self.runs:
            raise SpecError("a cost sweep needs finished runs to re-cost (runs = [...], or "
                            "--cost RUN_DIR)")
        if self.kind == "train" and self.runs:
            raise SpecError("runs are for cost sweeps (a train sweep makes its own)")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise SpecError(f"retries must be an integer >= 0, not {self.retries!r}")
        if not isinstance(self.vectors, int) or self.vectors < 1:
            raise SpecError(f"vectors must be a positive integer, not {self.vectors!r}")

    @property
    def points(self) -> int:
        return math.prod(len(v) for _, v in self.axes) * max(len(self.runs), 1)


def parse_value(text: str):
    """A command-line value: int, float, ``none``, ``true``/``false``, else the string."""
    v = text.strip()
    low = v.lower()
    if low == "none":
        return None
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def parse_axis(item: str) -> tuple[str, list]:
    """``NAME=V1,V2,...`` into ``(name, [values])``."""
    name, sep, values = item.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise SpecError(f"--axis {item!r}: expected NAME=V1,V2,...")
    return name.strip(), [parse_value(v) for v in values.split(",")]


def parse_fixed(item: str) -> tuple[str, object]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise SpecError(f"--fixed {item!r}: expected NAME=VALUE")
    return name.strip(), parse_value(value)


def load_spec(path: Path | None = None, *, axes=(), fixed=(), runs=(), name=None,
              retries=None, vectors=None) -> SweepSpec:
    """The spec of a TOML file and/or command-line parts (``axes``: ``NAME=V1,V2``
    strings, added to the file's; ``fixed``: ``NAME=VALUE``; ``runs``: cost runs)."""
    doc: dict = {}
    if path is not None:
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text())
        except OSError as exc:
            raise SpecError(f"{path}: cannot read the sweep spec: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{path}: not valid TOML: {exc}") from None
        known = {"name", "kind", "runs", "fixed", "axes", "retries", "vectors", "gpu_specs"}
        bad = set(doc) - known
        if bad:
            raise SpecError(f"{path}: unknown key {sorted(bad)[0]!r} (known: "
                            f"{', '.join(sorted(known))})")
        for k in ("fixed", "axes"):
            if not isinstance(doc.get(k, {}), dict):
                raise SpecError(f"{path}: [{k}] must be a table")
    def plain(v):                          # TOML has no null: "none" stands for None
        return None if isinstance(v, str) and v.lower() == "none" else v
    ax = [(a, [plain(v) for v in vs] if isinstance(vs, list) else vs)
          for a, vs in (doc.get("axes") or {}).items()]
    ax += [parse_axis(a) for a in axes]
    fx = {k: plain(v) for k, v in (doc.get("fixed") or {}).items()}
    fx.update(parse_fixed(f) for f in fixed)
    run_list = [str(r) for r in (doc.get("runs") or [])] + [str(r) for r in runs]
    kind = doc.get("kind") or ("cost" if run_list else "train")
    if name is None:
        name = doc.get("name") or (path.stem if path is not None else None)
    if name is None:                       # a command-line sweep: named by what it is
        h = hashlib.sha256(json.dumps([kind, ax, sorted(fx.items(), key=str), run_list],
                                      default=str).encode()).hexdigest()[:8]
        name = f"{kind}-{h}"
    return SweepSpec(name=name, kind=kind, axes=tuple((a, tuple(v)) for a, v in ax),
                     fixed=fx, runs=tuple(run_list),
                     retries=doc.get("retries", 2) if retries is None else retries,
                     vectors=doc.get("vectors", 16) if vectors is None else vectors,
                     gpu_specs=doc.get("gpu_specs"))


# ---- resolution ----------------------------------------------------------------------------
def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def point_key(resolved: dict) -> str:
    """The point's identity: a hash of its full, resolved configuration."""
    return hashlib.sha256(_canonical(resolved).encode()).hexdigest()[:16]


def _split(settings: dict):
    """(run settings, hardware changes, tech overrides, cost settings)."""
    run, hw, tech, cost = {}, {}, {}, {}
    for k, v in settings.items():
        head, dot, rest = k.partition(".")
        if k in RUN_SETTINGS or (dot and head in SUB_CONFIGS):
            run[k] = v
        elif head == "tech" and dot:
            tech[rest] = v
        elif k in COST_SETTINGS:
            cost[k] = v
        else:
            hw[k] = v
    return run, hw, tech, cost


def _run_config(run: dict, hw):
    """A :class:`sw.train.trainer.RunConfig` from run settings (defaults: ``hpt train``'s)."""
    from sw.data import DataConfig
    from sw.model.transformer import ModelConfig
    from sw.train.policy import PolicyConfig
    from sw.train.trainer import RunConfig, TrainConfig
    s = {**{k: v for k, v in TRAIN_DEFAULTS.items() if k != "manycore"}, **run}
    if s["backend"] not in SWEEP_BACKENDS:
        raise ValueError(f"a sweep trains with {' or '.join(SWEEP_BACKENDS)} (the rtl backend "
                         f"co-simulates one chip per run: use hpt train)")
    policy = s["policy"]
    # switch_at is the switch-at policy's step: without a policy setting it selects that
    # policy (as hpt train --switch-at); beside a policy axis, the other policies ignore it
    if s.get("switch_at") is not None and "policy" not in run:
        policy = "switch-at"
    subs = {"data": DataConfig(app=s["app"], seed=s["seed"]),
            "train": TrainConfig.recipe(s["preset"], seed=s["seed"], device="cpu"),
            "policy": PolicyConfig(name=policy, switch_at=s.get("switch_at")) if policy ==
            "switch-at" else PolicyConfig(name=policy),
            "model": ModelConfig.preset(s["preset"])}
    changes: dict = {}
    for k, v in s.items():
        if k in ("policy", "seed", "preset", "switch_at"):
            continue
        sub, name = RUN_SETTINGS[k] if k in RUN_SETTINGS else k.split(".", 1)
        changes.setdefault(sub, {})[name] = v
    for sub, ch in changes.items():
        names = {f.name for f in dataclasses.fields(subs[sub])}
        bad = set(ch) - names
        if bad:
            raise ValueError(f"{sub} has no field {sorted(bad)[0]!r}")
        if "lora_targets" in ch and isinstance(ch["lora_targets"], str):
            ch["lora_targets"] = tuple(t.strip() for t in ch["lora_targets"].split(","))
        subs[sub] = dataclasses.replace(subs[sub], **ch)
    return RunConfig(model=subs["model"], data=subs["data"], train=subs["train"],
                     policy=subs["policy"], hw=hw)


def _manycore(name, changes, base=None):
    from hw.manycore import PRESETS, preset
    if name is not None:
        if name not in PRESETS:
            raise ValueError(f"unknown manycore preset {name!r} (known: {', '.join(PRESETS)})")
        return preset(name, **changes)
    return base.replace(**changes) if changes else base


def _cost_settings(cost: dict, tech: dict, gpu_specs) -> dict:
    key = _canonical([cost, tech, gpu_specs])
    if key not in _COST_SETTINGS:
        _COST_SETTINGS[key] = _check_cost_settings(cost, tech, gpu_specs)
    return dict(_COST_SETTINGS[key])


_COST_SETTINGS: dict = {}


def _check_cost_settings(cost: dict, tech: dict, gpu_specs) -> dict:
    from sw.cost.estimate import gpu_spec, technology
    from sw.cost.report import DEFAULT_GPU
    gpu = cost.get("gpu", DEFAULT_GPU)
    spec = gpu_spec(gpu, gpu_specs)
    dtype = cost.get("dtype", "fp32")
    if dtype not in spec["peak_flops"]:
        raise ValueError(f"GPU {gpu} has no peak for dtype {dtype!r} (known: "
                         f"{', '.join(spec['peak_flops'])})")
    technology(tech)
    return {"gpu": gpu, "dtype": dtype, "tech": dict(sorted(tech.items())),
            "gpu_specs": str(gpu_specs) if gpu_specs else None}


def _run_identity(run_dir: Path) -> dict:
    """A finished run, for a cost point's key: its folder and what it recorded."""
    d = Path(run_dir)
    for f in ("config.json", "metrics.json", "trace.json"):
        if not (d / f).is_file():
            raise SpecError(f"run {d}: no {f} (cost sweeps re-cost finished hpt train runs)")
    h = hashlib.sha256()
    for f in ("config.json", "metrics.json", "trace.json"):
        h.update((d / f).read_bytes())
    return {"dir": str(d.resolve()), "digest": h.hexdigest()[:16]}


def _resolve_point(spec: SweepSpec, settings: dict, run_dir: str | None, run_cfgs: dict):
    run, hw_ch, tech, cost = _split(settings)
    costing = _cost_settings(cost, tech, spec.gpu_specs)
    if spec.kind == "cost":
        cfg, ident = run_cfgs[run_dir]
        hw = _manycore(cost.get("manycore"), hw_ch, cfg.hw)
        return {"kind": "cost", "run": ident, "hw": hw.to_dict(), **costing,
                "proxy_vectors": spec.vectors}
    hw = _manycore(cost.get("manycore", TRAIN_DEFAULTS["manycore"]), hw_ch)
    cfg = _run_config(run, hw)
    return {"kind": "train", "config": cfg.to_dict(), **costing}


def _check_value(spec: SweepSpec, name: str, value, run_cfgs: dict) -> None:
    """One setting against the fixed ones (and the first run): its own error."""
    settings = {**spec.fixed, name: value}
    if spec.kind == "cost":
        run, *_ = _split({name: value})
        if run:
            raise ValueError("run settings need a train sweep (a cost sweep re-costs "
                             "finished runs)")
    _resolve_point(spec, settings, next(iter(run_cfgs), None), run_cfgs)


def resolve(spec: SweepSpec) -> list[dict]:
    """Every point of ``spec``: ``{"key", "axes": {name: value}, "resolved": {...}}``;
    raises :class:`SpecError` naming the axis and value (or the fixed setting) before
    anything runs."""
    from sw.train.trainer import RunConfig
    run_cfgs = {}                           # run folder -> (its RunConfig, its identity)
    for r in spec.runs:
        ident = _run_identity(Path(r))
        try:
            cfg = RunConfig.from_dict(json.loads((Path(r) / "config.json").read_text()))
        except (ValueError, TypeError, KeyError) as exc:
            raise SpecError(f"run {r}: cannot read its config.json: {exc}") from None
        run_cfgs[r] = (cfg, ident)
    errors = (ValueError, TypeError, KeyError)
    for name, value in spec.fixed.items():
        try:
            _check_value(spec, name, value, run_cfgs)
        except errors as exc:
            raise SpecError(f"fixed setting {name} = {value!r}: {_msg(exc)}") from None
    for name, values in spec.axes:
        for value in values:
            try:
                _check_value(spec, name, value, run_cfgs)
            except errors as exc:
                raise SpecError(f"axis {name} = {value!r}: {_msg(exc)}") from None
    names = [n for n, _ in spec.axes]
    points = []
    for run_dir in (spec.runs or (None,)):
        for combo in itertools.product(*(v for _, v in spec.axes)):
            axes = dict(zip(names, combo))
            try:
                resolved = _resolve_point(spec, {**spec.fixed, **axes}, run_dir, run_cfgs)
            except errors as exc:
                shown = ", ".join(f"{k}={v!r}" for k, v in axes.items())
                raise SpecError(f"point {shown}: {_msg(exc)}") from None
            if run_dir is not None:
                axes = {"run": run_dir, **axes}
            points.append({"key": point_key(resolved), "axes": axes, "resolved": resolved})
    keys = [p["key"] for p in points]
    if len(set(keys)) != len(keys):
        raise SpecError("two points resolve to the same configuration (an axis value that "
                        "changes nothing, e.g. a field the preset already has): remove it")
    return points


def _msg(exc) -> str:
    return str(exc).strip("'\"") if isinstance(exc, KeyError) else str(exc)


# ---- the work of one point -----------------------------------------------------------------
def _cost_row(run_dir: str, hw, costing: dict) -> dict:
    from sw.cost.estimate import gpu_spec, run_cost, technology
    spec = gpu_spec(costing["gpu"], costing.get("gpu_specs"))
    c = run_cost(Path(run_dir), spec, technology(costing["tech"]), costing["dtype"], hw=hw)
    return {"speedup": c["speedup"], "energy_reduction": c["energy_reduction"],
            "energy_reduction_gpu_idle": c["energy_reduction_gpu_idle"],
            "step_speedup": c.get("step_speedup"),
            "step_energy_reduction": c.get("step_energy_reduction"),
            "low_param_fraction": c["low_param_fraction"], "ceiling": c["ceiling"],
            "copies": (c.get("placement") or {}).get("copies"),
            "blocks_used": (c.get("placement") or {}).get("blocks_used"),
            "app": c["app"], "policy": c["policy"], "mapping": c["mapping"]}


_PROXY: dict = {}


def mvm_error_proxy(tile, vectors: int = 16, seed: int = 0) -> dict:
    """The quality proxy of a cost point: the fidelity model's MVM error of ``tile``
    (percent; against the int8 product: what the tile adds, and against the float one)
    on Gaussian W and x; once per tile configuration in a process."""
    key = (_canonical(tile.to_dict()), vectors, seed)
    if key not in _PROXY:
        from sw.device.fidelity import _operands, errors
        e = errors(tile, *_operands(tile, vectors, seed))
        _PROXY[key] = {"proxy_mvm_error_pct": e["vs_int8_pct"],
                       "proxy_mvm_error_vs_float_pct": e["vs_float_pct"]}
    return dict(_PROXY[key])


def cost_chunk(arg: dict) -> list[dict]:
    """Cost points ``arg["points"]`` over ``arg["run"]``: one metrics dict per point; a
    point whose configuration cannot hold the run's model comes back as
    ``{"infeasible": reason}``."""
    from hw.manycore import ManycoreConfig
    from hw.placement import PlacementError
    out = []
    for p in arg["points"]:
        r = p["resolved"]
        hw = ManycoreConfig.from_dict(r["hw"])
        try:
            row = _cost_row(r["run"]["dir"], hw, r)
        except PlacementError as exc:
            out.append({"infeasible": str(exc)})
            continue
        row.update(mvm_error_proxy(hw.tile, arg["vectors"]))
        out.append(row)
    return out


def train_point(arg: dict) -> dict:
    """Train one point's run in ``arg["run_dir"]`` (a finished run of the same
    configuration is reused; an interrupted one resumes from its checkpoint), then cost
    it on its own manycore; ``{"infeasible": reason}`` when its frozen weights do not fit
    its ReRAM."""
    import torch
    torch.set_num_threads(1)
    from hw.placement import PlacementError, place
    from sw.model.hybrid import frozen_shapes
    from sw.train.trainer import RunConfig, Trainer
    r = arg["resolved"]
    cfg = RunConfig.from_dict(r["config"])
    if cfg.policy.name != "full":            # the frozen weights must fit the ReRAM
        try:
            place(cfg.hw, frozen_shapes(cfg.model, cfg.train.mapping, cfg.policy.lora_targets))
        except PlacementError as exc:
            return {"infeasible": str(exc)}
    run_dir = Path(arg["run_dir"])
    saved = run_dir / "config.json"
    same = saved.is_file() and _canonical(RunConfig.from_dict(
        json.loads(saved.read_text())).to_dict()) == _canonical(cfg.to_dict())
    if saved.is_file() and not same:
        raise ValueError(f"{run_dir} holds a run of another configuration")
    if same and (run_dir / "metrics.json").is_file():
        m = json.loads((run_dir / "metrics.json").read_text())
    elif same and (run_dir / "checkpoint.pt").is_file():
        m = Trainer.resume(run_dir, quiet=True).fit()
    else:
        m = Trainer(cfg, run_dir, quiet=True).fit()
    row = {"test_mse": m["test_mse"], "test_mae": m.get("test_mae"),
           "switch_step": m["switch_step"], "total_steps": m["total_steps"],
           "trainable_params_low": m.get("trainable_params_low")}
    row.update(_cost_row(str(run_dir), None, r))
    return row


# ---- the sweep -----------------------------------------------------------------------------
def _read_results(path: Path) -> dict:
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue                     # a line cut by a crash: that point runs again
            if row.get("status") in ("ok", "infeasible"):
                done[row["key"]] = row
    return done


def _tasks(spec: SweepSpec, points: list[dict], out: Path, cpus: int):
    from sw.experiments.engine import Task
    if spec.kind == "train":
        tasks = []
        for p in points:
            name = _run_name(p)
            gpus = 1.0 if p["resolved"]["config"]["train"]["device"] == "cuda" else 0.0
            tasks.append(Task(p["key"], train_point,
                              {"resolved": p["resolved"], "run_dir": str(out / "runs" / name)},
                              gpus=gpus, label=name))
        return tasks, {p["key"]: [p] for p in points}
    # cost points: chunks (per run), a few per worker, so that each worker's caches
    # (the run's trace, placements, cycle counts, fidelity proxies) serve many points
    by_run: dict = {}
    for p in points:
        by_run.setdefault(p["axes"]["run"], []).append(p)
    tasks, members = [], {}
    for run, ps in by_run.items():
        size = max(1, min(500, math.ceil(len(ps) / (4 * max(cpus, 1)))))
        for i in range(0, len(ps), size):
            chunk = ps[i:i + size]
            key = point_key([q["key"] for q in chunk])
            tasks.append(Task(key, cost_chunk, {"points": chunk, "vectors": spec.vectors},
                              weight=len(chunk), label=f"cost x{len(chunk)}"))
            members[key] = chunk
    return tasks, members


def run_sweep(spec: SweepSpec, out: Path | None = None, *, engine: str = "ray",
              address: str | None = None, cpus: int | None = None,
              quiet: bool = False) -> dict:
    """Resolve, run what is not finished, write the outputs; returns the summary
    (``points``: rows; ``ran``/``reused``/``failed``/``infeasible`` counts; ``paths``)."""
    import os

    from sw.experiments.engine import execute
    points = resolve(spec)                   # every error before anything runs or is written
    out = Path(out) if out is not None else Path("build/sweeps") / spec.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.json").write_text(json.dumps(
        {"name": spec.name, "kind": spec.kind, "axes": [[a, list(v)] for a, v in spec.axes],
         "fixed": spec.fixed, "runs": list(spec.runs), "retries": spec.retries,
         "vectors": spec.vectors}, indent=1, default=str) + "\n")
    results_path = out / "results.jsonl"
    done = _read_results(results_path)
    todo = [p for p in points if p["key"] not in done]
    n_cpus = cpus or os.cpu_count() or 1
    tasks, members = _tasks(spec, todo, out, n_cpus)
    t0 = time.perf_counter()
    if not quiet:
        print(f"sweep {spec.name}: {len(points)} {spec.kind} points, "
              f"{len(points) - len(todo)} finished before, {len(todo)} to run on {engine}",
              flush=True)
    failed = {}                              # key -> row (not kept: runs again next time)

    def record(o) -> None:                   # as each task finishes: Ctrl-C keeps the rest
        chunk = members[o.key]
        values = o.value if spec.kind == "cost" and o.ok else [o.value] * len(chunk)
        with open(results_path, "a") as f:
            for p, v in zip(chunk, values):
                row = {"key": p["key"], "axes": p["axes"], "attempts": o.attempts}
                if spec.kind == "train":
                    row["run_dir"] = str(out / "runs" / _run_name(p))
                if not o.ok:
                    log = out / "logs" / f"{p['key']}.log"
                    log.parent.mkdir(exist_ok=True)
                    log.write_text(o.log)
                    row.update(status="failed", error=o.error, log=str(log))
                    failed[p["key"]] = row
                    continue
                if "infeasible" in v:
                    row.update(status="infeasible", error=v["infeasible"])
                else:
                    row.update(status="ok", metrics=v)
                f.write(json.dumps(row, default=str) + "\n")
                done[p["key"]] = row

    execute(tasks, engine=engine, address=address, cpus=cpus, retries=spec.retries,
            quiet=quiet, on_done=record)
    wall = time.perf_counter() - t0
    rows = [done.get(p["key"]) or failed[p["key"]] for p in points]
    summary = {"name": spec.name, "kind": spec.kind, "engine": engine, "points": rows,
               "ran": len(todo), "reused": len(points) - len(todo), "failed": len(failed),
               "infeasible": sum(r["status"] == "infeasible" for r in rows),
               "wall_s": wall, "axes": [a for a, _ in spec.axes]}
    summary["paths"] = write_outputs(summary, out)
    return summary


def _run_name(p: dict) -> str:
    """A train point's run folder: readable, and unique by the point's key."""
    c = p["resolved"]["config"]
    return f"{c['data']['app']}_{c['policy']['name']}_{p['key']}"


# ---- outputs -------------------------------------------------------------------------------
METRICS = ("speedup", "energy_reduction", "energy_reduction_gpu_idle", "step_speedup",
           "low_param_fraction", "ceiling", "copies", "blocks_used", "test_mse",
           "switch_step", "trainable_params_low", "proxy_mvm_error_pct",
           "proxy_mvm_error_vs_float_pct")


def _quality(row: dict, kind: str):
    m = row.get("metrics") or {}
    return m.get("proxy_mvm_error_pct") if kind == "cost" else m.get("test_mse")


def _group(row: dict, kind: str) -> str:
    """Points are compared within a group: one run (cost) or one app (train)."""
    return row["axes"]["run"] if kind == "cost" else (row.get("metrics") or {}).get("app", "")


def _mark_front(summary: dict) -> None:
    kind = summary["kind"]
    groups: dict = {}
    for r in summary["points"]:
        if r["status"] == "ok":
            groups.setdefault(_group(r, kind), []).append(r)
    for rows in groups.values():
        trip = [(r["metrics"]["speedup"], r["metrics"]["energy_reduction"],
                 _quality(r, kind) or 0.0) for r in rows]
        for r, on in zip(rows, pareto_front(trip)):
            r["on_front"] = on


def pareto_front(trip: list[tuple]) -> list[bool]:
    """For ``(speedup, energy reduction, quality loss)`` triples: whether each is on the
    front (no other point at least as fast, as frugal and as accurate, and better in one;
    points equal in all three are all kept). Sorted by speedup, each point is checked
    against the front so far: O(n log n + n x front)."""
    order = sorted(range(len(trip)), key=lambda i: (-trip[i][0], -trip[i][1], trip[i][2]))
    front: list[tuple] = []
    flags = [False] * len(trip)
    for i in order:
        s, e, q = trip[i]
        if any(f[0] >= s and f[1] >= e and f[2] <= q and f != (s, e, q) for f in front):
            continue
        flags[i] = True
        front.append((s, e, q))
    return flags


def write_outputs(summary: dict, out: Path) -> dict:
    kind = summary["kind"]
    _mark_front(summary)
    rows = summary["points"]
    axes = (["run"] if kind == "cost" else []) + summary["axes"]
    paths = {}
    cols = ["key", "status"] + axes + list(METRICS) + ["on_front", "attempts", "run_dir",
                                                        "error", "log"]
    with open(out / "points.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            m = r.get("metrics") or {}
            w.writerow([r["key"], r["status"]] + [r["axes"].get(a) for a in axes]
                       + [m.get(k) for k in METRICS]
                       + [r.get("on_front", False), r.get("attempts"), r.get("run_dir"),
                          r.get("error"), r.get("log")])
    paths["csv"] = out / "points.csv"
    (out / "points.json").write_text(json.dumps(
        {k: v for k, v in summary.items() if k != "paths"}, indent=1, default=str) + "\n")
    paths["json"] = out / "points.json"
    ok = [r for r in rows if r["status"] == "ok"]
    if ok:
        paths["pareto"] = _plot_pareto(summary, out / "pareto.png")
        varied = [a for a in summary["axes"] if len({str(r["axes"][a]) for r in ok}) > 1]
        if varied:
            paths["sensitivity"] = _plot_sensitivity(summary, varied, out / "sensitivity.png")
    paths["summary"] = _write_summary(summary, out / "summary.md")
    return {k: str(v) for k, v in paths.items()}


def _quality_label(kind: str) -> str:
    return ("quality proxy: MVM error the tile adds, % (fidelity model)" if kind == "cost"
            else "test MSE (normalised)")


def _plot_pareto(summary: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kind = summary["kind"]
    groups: dict = {}
    for r in summary["points"]:
        if r["status"] == "ok":
            groups.setdefault(_group(r, kind), []).append(r)
    fig, axs = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 4.3), squeeze=False)
    for ax, (g, rows) in zip(axs[0], groups.items()):
        s = [r["metrics"]["speedup"] for r in rows]
        e = [r["metrics"]["energy_reduction"] for r in rows]
        q = [_quality(r, kind) or 0.0 for r in rows]
        sc = ax.scatter(s, e, c=q, cmap="viridis_r", s=14, alpha=0.8)
        fs = [(a, b) for a, b, r in zip(s, e, rows) if r.get("on_front")]
        ax.scatter([a for a, _ in fs], [b for _, b in fs], s=60, facecolors="none",
                   edgecolors="red", linewidths=1.0, label=f"Pareto front ({len(fs)})")
        # the 2-D front (speedup, energy) as a staircase
        two = sorted(zip(s, e), key=lambda p: (-p[0], -p[1]))
        stair, best = [], -math.inf
        for a, b in two:
            if b > best:
                stair.append((a, b))
                best = b
        ax.step([a for a, _ in stair], [b for _, b in stair], where="post", color="red",
                linewidth=0.8, alpha=0.6)
        ax.set_xlabel("whole-run speedup vs GPU-only")
        ax.set_ylabel("whole-run energy reduction vs GPU-only")
        title = Path(g).name if kind == "cost" else g
        ax.set_title(f"{title} ({len(rows)} points)", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        fig.colorbar(sc, ax=ax).set_label(_quality_label(kind), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_sensitivity(summary: dict, varied: list[str], path: Path) -> Path:
    """Per varied axis: each metric's median over the other axes at each value, with the
    min-max band, one line per group."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    kind = summary["kind"]
    ok = [r for r in summary["points"] if r["status"] == "ok"]
    metrics = [("speedup", "speedup"), ("energy_reduction", "energy reduction"),
               ("quality", "MVM error proxy, %" if kind == "cost" else "test MSE")]
    fig, axs = plt.subplots(len(metrics), len(varied), figsize=(3.4 * len(varied), 7.5),
                            squeeze=False)
    groups = sorted({_group(r, kind) for r in ok})
    for j, a in enumerate(varied):
        values = list(dict.fromkeys(str(r["axes"][a]) for r in ok))
        for i, (m, label) in enumerate(metrics):
            ax = axs[i][j]
            for g in groups:
                med, lo, hi = [], [], []
                for v in values:
                    ys = [(_quality(r, kind) if m == "quality" else r["metrics"][m]) for r in ok
                          if str(r["axes"][a]) == v and _group(r, kind) == g]
                    ys = [y for y in ys if y is not None]
                    med.append(np.median(ys) if ys else np.nan)
                    lo.append(min(ys) if ys else np.nan)
                    hi.append(max(ys) if ys else np.nan)
                x = range(len(values))
                name = Path(g).name if kind == "cost" else g
                ax.plot(x, med, marker="o", label=name)
                ax.fill_between(x, lo, hi, alpha=0.15)
            ax.set_xticks(range(len(values)), values, fontsize=7)
            if i == len(metrics) - 1:
                ax.set_xlabel(a)
            if j == 0:
                ax.set_ylabel(label)
    axs[0][0].legend(fontsize=6)
    fig.suptitle("One axis at a time: median over the other axes, band min-max", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _fmt_axis(v) -> str:
    return "none" if v is None else _fmt(v)


def _write_summary(summary: dict, path: Path) -> Path:
    kind = summary["kind"]
    rows = summary["points"]
    axes = summary["axes"]
    n_ok = sum(r["status"] == "ok" for r in rows)
    lines = [f"# Sweep {summary['name']} ({kind})", "",
             f"{len(rows)} points: {n_ok} costed, {summary['infeasible']} infeasible, "
             f"{summary['failed']} failed; {summary['ran']} ran this time on "
             f"{summary['engine']} in {summary['wall_s']:.1f} s, {summary['reused']} reused.",
             "",
             "Front: no other point of the same " + ("run" if kind == "cost" else "app")
             + " is at least as fast, as frugal and as accurate (quality: "
             + _quality_label(kind) + ") and better in one.", ""]
    groups: dict = {}
    for r in rows:
        if r["status"] == "ok":
            groups.setdefault(_group(r, kind), []).append(r)
    qname = "MVM error proxy %" if kind == "cost" else "test MSE"
    for g, rs in groups.items():
        front = sorted((r for r in rs if r.get("on_front")),
                       key=lambda r: -r["metrics"]["speedup"])
        best_s = max(rs, key=lambda r: r["metrics"]["speedup"])
        best_e = max(rs, key=lambda r: r["metrics"]["energy_reduction"])
        fs = sorted(r["metrics"]["low_param_fraction"] for r in rs)
        bound = (f"ceiling 1/(1-f): {_fmt(rs[0]['metrics'].get('ceiling'))}" if kind == "cost"
                 else f"f (share of iterations after the switch) {fs[0]:.2f} to {fs[-1]:.2f}")
        lines += [f"## {g}", "",
                  f"{len(rs)} points; {len(front)} on the front. Fastest: "
                  f"{best_s['metrics']['speedup']:.3g}x; most frugal: "
                  f"{best_e['metrics']['energy_reduction']:.3g}x; {bound}.", "",
                  "| " + " | ".join(axes) + f" | speedup | energy reduction | {qname} | key |",
                  "|" + "---|" * (len(axes) + 4)]
        for r in front[:40]:
            m = r["metrics"]
            lines.append("| " + " | ".join(_fmt_axis(r["axes"][a]) for a in axes)
                         + f" | {m['speedup']:.3g}x | {m['energy_reduction']:.3g}x | "
                         f"{_fmt(_quality(r, kind))} | {r['key']} |")
        if len(front) > 40:
            lines.append(f"| ... {len(front) - 40} more front points in points.csv |")
        lines.append("")
    bad = [r for r in rows if r["status"] in ("failed", "infeasible")]
    if bad:
        lines += ["## Not costed", "", "| point | status | reason | log |", "|---|---|---|---|"]
        for r in bad[:50]:
            shown = ", ".join(f"{k}={_fmt_axis(v)}" for k, v in r["axes"].items() if k != "run")
            reason = (r.get("error") or "").splitlines()[0][:160] if r.get("error") else ""
            lines.append(f"| {shown} | {r['status']} | {reason} | {r.get('log') or '-'} |")
        if len(bad) > 50:
            lines.append(f"| ... {len(bad) - 50} more in points.csv | | | |")
    path.write_text("\n".join(lines) + "\n")
    return path
