"""HpT's training recipe: full-parameter phase, switch, low-parameter phase on the hybrid.

One readable loop (nanoGPT style): setup -> epochs of minibatches -> evaluation,
checkpoint, metrics -> report. The full phase uses AdamW with a learning-rate schedule
(``step``: x0.3 every 4 epochs, as the authors' code, full phase only; ``cosine``: warm-up
and a cosine decay over the whole budget, followed by both phases); at the switch the
frozen weights are programmed into ReRAM once, LoRA adapters go on the targets (Q and V by
default), and a fresh AdamW trains the adapters, the input embedding, the
dimension-reduction MLP and the head. Each model preset has its recipe (:data:`RECIPES`).
Same seed -> same numbers; a run resumed from its checkpoint continues exactly as if it had
not stopped.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from hw.manycore import ManycoreConfig, preset

from sw.device.backends import OpTrace, make_backend
from sw.data import DataConfig, Split, load
from sw.model.hybrid import apply_lora, lora_layers, set_backend
from sw.model.transformer import ModelConfig, SpatialTransformer
from sw.train.policy import PolicyConfig, make_policy
from sw.train.runfolder import load_checkpoint, restore, save_checkpoint, write_results

__all__ = ["TrainConfig", "RunConfig", "RECIPES", "SCHEDULES", "Trainer", "Interrupted", "train",
           "stop_on_sigint"]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch: int = 32               # time steps per minibatch (all stations of each step)
    lr: float = 1e-3
    weight_decay: float = 0.01
    schedule: str = "step"        # step: StepLR over epochs, full phase only (the low phase
                                  # keeps the rate it starts at); cosine: one schedule over the
                                  # whole budget's iterations that both phases follow
    lr_step_epochs: int = 4       # step: multiply the rate by lr_gamma every this many epochs
    lr_gamma: float = 0.3
    warmup: int = 0               # cosine: iterations of linear warm-up from lr / warmup
    min_lr: float = 0.1           # cosine: the rate at the end of the budget, as a share of lr
    clip: float | None = None     # clip the gradient norm of every step to this (None: off)
    low_lr: float | None = None   # the low-parameter phase's fresh optimizer; None: the
                                  # full phase's rate at the switch (where its schedule is)
    attn_bias_lr: float = 10.0    # the attention bias's rate as a multiple of lr (attn_bias)
    seed: int = 0
    backend: str = "torch"        # torch | functional | rtl: what runs the low-parameter phase
    mapping: str = "hpt"          # hpt | qv: which unit runs which op (sw.model.hybrid)
    device: str = "auto"          # auto: CUDA when available, else CPU
    rtl_sample: float = 1.0       # rtl: share of hardware ops sent to the RTL (rest: functional)
    check: bool = True            # rtl: compare every RTL op with the functional models
    rtl_eval: bool = False        # rtl: validation/test passes on the RTL too (else on the
                                  # functional models, bit-identical and checked in training)

    def __post_init__(self):
        if self.backend not in ("torch", "functional", "rtl"):
            raise ValueError(f"TrainConfig.backend must be torch, functional or rtl, "
                             f"not {self.backend!r}")
        if self.mapping not in ("hpt", "qv"):
            raise ValueError(f"TrainConfig.mapping must be hpt or qv, not {self.mapping!r}")
        if not 0.0 <= self.rtl_sample <= 1.0:
            raise ValueError(f"TrainConfig.rtl_sample must be in [0, 1], not {self.rtl_sample}")
        for n in ("epochs", "batch", "lr_step_epochs"):
            if getattr(self, n) < 1:
                raise ValueError(f"TrainConfig.{n} must be positive")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule must be one of {', '.join(SCHEDULES)}, "
                             f"not {self.schedule!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be positive, not {self.lr}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"TrainConfig.warmup must be a non-negative integer, "
                             f"not {self.warmup!r}")
        if self.warmup and self.schedule != "cosine":
            raise ValueError("TrainConfig.warmup needs schedule='cosine' (the step schedule "
                             "counts epochs)")
        if not 0.0 <= self.min_lr <= 1.0:
            raise ValueError(f"TrainConfig.min_lr must be in [0, 1], not {self.min_lr}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"TrainConfig.clip must be positive or None, not {self.clip}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) \
                or not 0 <= self.seed < 2 ** 32:
            raise ValueError(f"TrainConfig.seed must be an integer in [0, 2**32) (numpy's "
                             f"seeding), not {self.seed!r}")
        if not self.attn_bias_lr > 0:
            raise ValueError(f"TrainConfig.attn_bias_lr must be positive, "
                             f"not {self.attn_bias_lr}")

    def lr_factor(self, step: int, total: int) -> float:
        """``schedule='cosine'``: the share of ``lr`` for iteration ``step`` (0-based) of a
        ``total``-iteration budget: linear warm-up over ``warmup`` iterations, then a
        half cosine from 1 down to ``min_lr`` at the last iteration (and ``min_lr`` after)."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, total - 1 - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return self.min_lr + (1.0 - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    @classmethod
    def recipe(cls, preset: str, **overrides) -> "TrainConfig":
        """The recipe for a model preset (:data:`RECIPES`), with ``overrides`` on top."""
        if preset not in RECIPES:
            raise ValueError(f"no training recipe for preset {preset!r}; one of "
                             f"{sorted(RECIPES)}")
        return cls(**{**RECIPES[preset], **overrides})


#: Learning-rate schedules of :class:`TrainConfig`.
SCHEDULES = ("step", "cosine")

#: The training recipe of each model preset (fields of :class:`TrainConfig`): the tiny
#: preset keeps the step schedule every other figure was measured with; the paper preset
#: (d 512, 12 post-LN layers) diverges with it and needs warm-up, a smaller rate and
#: clipping (README, Training, "Recipe").
RECIPES = {
    "tiny": {},
    "paper": dict(lr=2e-4, schedule="cosine", warmup=30, min_lr=0.1, clip=1.0),
}


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    hw: ManycoreConfig = field(default_factory=lambda: preset("atleus"))

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "data": self.data.to_dict(),
                "train": asdict(self.train), "policy": self.policy.to_dict(),
                "hw": self.hw.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        train = dict(d["train"])
        train.setdefault("mapping", "qv")          # run folders from before the mapping
        model = {"residual": False, **d["model"]}   # ... and from before the residual head
        # ... and a headroom or branch run from before headroom's confidence bound and
        # branch's best reference (other policies do not read them)
        policy = dict(d["policy"])
        if policy.get("name") in ("headroom", "branch"):
            policy = {"headroom_confidence": 0.5, "branch_reference": "last", **policy}
        return cls(ModelConfig(**model), DataConfig(**d["data"]), TrainConfig(**train),
                   PolicyConfig(**policy), ManycoreConfig.from_dict(d["hw"]))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class GpuMeter:
    """Measured time (CUDA events) and energy (NVML's total-energy counter, where the
    driver has one) of the full-parameter phase's steps on a CUDA device; the cost model's
    roofline is checked against these (``hpt report``). Off on other devices."""

    def __init__(self, device: torch.device):
        self.on = device.type == "cuda"
        self.steps, self.seconds, self.joules = 0, 0.0, None
        self.nvml = self.handle = None
        self.name = torch.cuda.get_device_name(device) if self.on else None
        if self.on:
            try:
                import pynvml
                pynvml.nvmlInit()
                index = device.index if device.index is not None else torch.cuda.current_device()
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
                self.nvml, self.joules = pynvml, 0.0
            except Exception:                # no pynvml, or no energy counter on this GPU
                self.nvml = None

    def _mj(self) -> int:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)

    def start(self) -> None:
        if not self.on:
            return
        torch.cuda.synchronize()
        self._e0 = self._mj() if self.nvml else 0
        self._ev = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self._ev[0].record()

    def stop(self) -> None:
        if not self.on:
            return
        self._ev[1].record()
        torch.cuda.synchronize()
        self.steps += 1
        self.seconds += self._ev[0].elapsed_time(self._ev[1]) / 1e3
        if self.nvml:
            self.joules += (self._mj() - self._e0) / 1e3

    def state_dict(self) -> dict:
        return {"steps": self.steps, "seconds": self.seconds, "joules": self.joules}

    def load_state_dict(self, d: dict) -> None:
        self.steps, self.seconds = d.get("steps", 0), d.get("seconds", 0.0)
        if self.nvml:
            self.joules = d.get("joules") or 0.0

    def result(self) -> dict | None:
        if not self.on:
            return None
        return {"device": self.name, "steps": self.steps, "seconds": self.seconds,
                "joules": self.joules, "what": "full-parameter steps (forward, backward, "
                "optimizer; the paper policy's LoRA trial included), CUDA events and NVML"}


class _Progress:
    """One status line on stderr, rewritten in place (a plain log line when not a TTY)."""

    def __init__(self, total: int, quiet: bool, every: int = 50):
        self.total, self.quiet, self.t0, self.every = total, quiet, time.time(), every
        self.tty = sys.stderr.isatty()

    def show(self, step: int, text: str, force: bool = False) -> None:
        if self.quiet or not (force or self.tty or step % self.every == 0):
            return
        frac = step / max(self.total, 1)
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        rate = step / max(time.time() - self.t0, 1e-9)
        line = f"[{bar}] {step}/{self.total} {rate:5.1f} it/s {text}"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and (force or step == self.total):
            sys.stderr.write("\n")
        sys.stderr.flush()


class Interrupted(Exception):
    """Training stopped on request (Ctrl-C) after a step; the checkpoint is saved."""

    def __init__(self, step: int, run_dir: Path):
        super().__init__(f"interrupted after step {step}; checkpoint in {run_dir}")
        self.step, self.run_dir = step, run_dir


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, quiet: bool = False, *,
                 _program: bool = True):
        from hw.placement import place

        from sw.model.hybrid import frozen_shapes
        if cfg.policy.name != "full":        # the frozen weights must fit the ReRAM
            place(cfg.hw, frozen_shapes(cfg.model, cfg.train.mapping, cfg.policy.lora_targets))
        self.cfg, self.run_dir, self.quiet = cfg, Path(run_dir), quiet
        self.device = _device(cfg.train.device)
        torch.manual_seed(cfg.train.seed)
        np.random.seed(cfg.train.seed)
        self.data = load(cfg.data)            # bad data stops before the run folder exists
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.model = SpatialTransformer.for_data(cfg.model, self.data).to(self.device)
        self.per_epoch = math.ceil(len(self.data.train.X) / cfg.train.batch)
        self.trace = OpTrace()
        self.backend = None
        self.phase = "full"
        self.ranks: list | None = None         # per layer: a rank, or {target: rank}
        self.policy = make_policy(cfg.policy)
        self.opt = self._optimizer(cfg.train.lr)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=1, gamma=1.0)
        self.step = self.epoch = 0
        self.epoch_step = 0               # batches of the current epoch already trained
        self.stop_file = self.run_dir / "STOP"   # created by a Ctrl-C handler (see stop())
        self.stop_file.unlink(missing_ok=True)
        self._stop = False
        self.switch_step = None
        self.low_steps = 0
        self.window: list[float] = []
        self.trial = None                 # (model, optimizer, full losses, lora losses, ranks)
        self._held = None                 # the headroom policy's held-out windows
        self.history = {"step_loss": [], "epochs": [], "policy": []}
        self.best = {"val": math.inf, "state": None, "epoch": None}
        self.phase_time = {"full": 0.0, "low": 0.0}
        self.gpu_meter = GpuMeter(self.device)
        if cfg.policy.name == "lora":
            self._switch(ranks=[cfg.policy.lora_rank] * cfg.model.layers, program=_program)
        elif cfg.train.schedule == "step":
            self.sched = torch.optim.lr_scheduler.StepLR(
                self.opt, step_size=cfg.train.lr_step_epochs, gamma=cfg.train.lr_gamma)

    # ---- setup helpers -------------------------------------------------------------------
    def _optimizer(self, lr, model=None):
        """AdamW over the trainable parameters; the attention bias (``ModelConfig.attn_bias``)
        in a group of its own at ``attn_bias_lr`` times the rate (``lr_scale``, which every
        schedule keeps): an Adam step moves a weight by about the rate, and attention
        logits must move by several units, so at the common rate the bias learns the
        stations' geography slowly (README, Model)."""
        named = [(n, p) for n, p in (model or self.model).named_parameters() if p.requires_grad]
        bias = [p for n, p in named if n.endswith(".station_bias")]
        groups = [{"params": [p for n, p in named if not n.endswith(".station_bias")]}]
        if bias:
            scale = self.cfg.train.attn_bias_lr
            groups.append({"params": bias, "lr": lr * scale, "lr_scale": scale})
        return torch.optim.AdamW(groups, lr=lr, weight_decay=self.cfg.train.weight_decay)

    def _low_lr(self) -> float:
        lr = self.cfg.train.low_lr
        return lr if lr is not None else self.opt.param_groups[0]["lr"]

    def _lora(self, model, ranks):
        p = self.cfg.policy
        apply_lora(model, dict(enumerate(ranks)), alpha=p.lora_alpha, dropout=p.lora_dropout,
                   targets=p.lora_targets)
        for lora in lora_layers(model):
            lora.to(self.device)

    def _switch(self, ranks, model=None, opt=None, program: bool = True):
        """Enter the low-parameter phase: LoRA on Q/V (or adopt a trained copy), program
        the frozen weights into ReRAM once, route products to the backend."""
        if model is None:
            self._lora(self.model, ranks)
            opt = self._optimizer(self._low_lr())
        else:
            self.model = model
        self.ranks = list(ranks)
        self.phase = "low"
        self.switch_step = self.step
        self.trace.phase = "low"
        self.backend = make_backend(self.cfg.train.backend, self.cfg.hw, self.trace)
        if program:
            set_backend(self.model, self.backend, mapping=self.cfg.train.mapping)
        self.opt = opt
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=1, gamma=1.0)

    # ---- data ---------------------------------------------------------------------------
    def _batches(self, split, shuffle: bool):
        n = len(split.X)
        if shuffle:
            g = torch.Generator().manual_seed(self.cfg.train.seed * 100003 + self.epoch)
            order = torch.randperm(n, generator=g).numpy()
        else:
            order = np.arange(n)
        bs = self.cfg.train.batch
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            yield (torch.from_numpy(split.X[idx]).to(self.device),
                   torch.from_numpy(split.y[idx]).to(self.device))

    @torch.no_grad()
    def evaluate(self, split, model=None) -> dict:
        model = model or self.model
        model.eval()
        phase, self.trace.phase = self.trace.phase, "eval"     # inference: not training work
        dev = self.backend.device if self.backend is not None else None
        se = ae = n = 0.0
        with dev.evaluation(self.cfg.train.rtl_eval) if dev else contextlib.nullcontext():
            for X, y in self._batches(split, shuffle=False):
                err = model(X) - y
                se += float((err ** 2).sum())
                ae += float(err.abs().sum())
                n += err.numel()
        model.train()
        self.trace.phase = phase
        return {"mse": se / n, "mae": ae / n}

    def _held_out_loss(self, model=None) -> tuple[float, int]:
        """The MSE of ``model`` (the trained one by default) on ``policy.held_out``
        validation windows spread evenly over the validation split (the same ones every
        time), and the batches that took."""
        if self._held is None:
            v = self.data.val
            m = min(len(v.X), self.cfg.policy.held_out)
            idx = np.unique(np.linspace(0, len(v.X) - 1, m).round().astype(int))
            self._held = Split(v.X[idx], v.y[idx])
        batches = math.ceil(len(self._held.X) / self.cfg.train.batch)
        return self.evaluate(self._held, model)["mse"], batches

    def _device_progress(self) -> str:
        dev = self.backend.device if self.backend is not None else None
        line = dev.progress() if dev is not None else ""
        return (" | " + line) if line else ""

    # ---- one iteration --------------------------------------------------------------------
    def _update(self, loss, model, opt) -> None:
        """One optimizer step on ``loss``: the schedule's rate for this iteration (cosine:
        both phases follow it, the low phase from ``low_lr`` when set), clipping."""
        t = self.cfg.train
        if t.schedule == "cosine":
            base = t.low_lr if (model is not self.model or self.phase == "low") and \
                t.low_lr is not None else t.lr
            for g in opt.param_groups:
                g["lr"] = base * t.lr_factor(self.step, t.epochs * self.per_epoch) \
                    * g.get("lr_scale", 1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if t.clip is not None:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad],
                                           t.clip)
        opt.step()

    def _iteration(self, X, y) -> float:
        # low phase: what the host still computes goes into the trace, per kernel kind:
        # the vector unit's work under the hpt mapping, the GPU's under qv
        count = (self.backend.kernels("vector" if self.cfg.train.mapping == "hpt" else "gpu")
                 if self.phase == "low" and self.backend is not None
                 else contextlib.nullcontext())
        with count:
            loss = torch.nn.functional.mse_loss(self.model(X), y)
            self._update(loss, self.model, self.opt)
        if self.trial is not None:            # the LoRA copy trains on the same batch
            tm, topt, fl, ll, _ = self.trial
            tl = torch.nn.functional.mse_loss(tm(X), y)
            self._update(tl, tm, topt)
            fl.append(float(loss.detach()))
            ll.append(float(tl.detach()))
        return float(loss.detach())

    def _policy_step(self) -> None:
        p = self.cfg.policy
        if p.name == "switch-at":             # the control: exactly after switch_at iterations
            if self.phase == "full" and self.step == p.switch_at:
                self._switch([p.lora_rank] * self.cfg.model.layers)
            return
        k = p.interval
        if self.phase != "full" or self.policy is None or self.step % k:
            return
        branches = getattr(self.policy, "branches", False)
        if self.trial is not None and not branches:     # a k-iteration trial ends
            tm, topt, fl, ll, ranks = self.trial
            self.trial = None
            if self.policy.trial_verdict(fl, ll, self.step):
                self._switch(ranks, model=tm, opt=topt)
            return
        mean = float(np.mean(self.window[-k:]))
        extra = {}
        total = self.cfg.train.epochs * self.per_epoch
        if getattr(self.policy, "uses_held_out", False):
            extra = {"held_out": self._held_out_loss(), "total": total}
        want = self.policy.check(self.step, mean, self.model, **extra)
        if branches:
            self._branch_step(want, extra["held_out"][0], total)
        elif want:
            if self.cfg.policy.name in ("paper", "early"):       # a LoRA trial decides
                self._start_trial()
            else:
                self._switch(self.policy.ranks(self.model))

    def _start_trial(self) -> None:
        """A LoRA copy of the full model (the policy's ranks now) that trains beside it."""
        ranks = self.policy.ranks(self.model)
        tm = copy.deepcopy(self.model)
        self._lora(tm, ranks)
        self.trial = (tm, self._optimizer(self._low_lr(), tm), [], [], ranks)

    def _branch_step(self, want: bool, full_loss: float, total: int) -> None:
        """The branch policy at a check (``want``: headroom asks for the switch): start
        the branch, or end it (adopt it, or drop it), or switch as headroom."""
        pol = self.policy
        if self.trial is not None:
            if not (want or pol.branch_due(self.step, total)):
                return
            tm, topt, _, _, ranks = self.trial
            self.trial = None
            lora_loss, batches = self._held_out_loss(tm)
            if pol.branch_verdict(full_loss, lora_loss, batches, self.step):
                self._switch(ranks, model=tm, opt=topt)
                return
        if want:
            self._switch(pol.ranks(self.model))
        elif pol.start_branch(self.step, total):
            self._start_trial()

    # ---- the loop -------------------------------------------------------------------------
    def fit(self, until_epoch: int | None = None) -> dict | None:
        """Train to the configured number of epochs (or stop, checkpointed, after
        ``until_epoch``, returning None) and write the run's results."""
        t = self.cfg.train
        per_epoch = self.per_epoch
        bar = _Progress(t.epochs * per_epoch, self.quiet, every=1 if t.backend == "rtl" else 50)
        while self.epoch < t.epochs:
            for i, (X, y) in enumerate(self._batches(self.data.train, shuffle=True)):
                if i < self.epoch_step:          # trained before an interruption
                    continue
                t0 = time.perf_counter()
                metered = self.phase == "full"
                if metered:
                    self.gpu_meter.start()
                loss = self._iteration(X, y)
                if metered:
                    self.gpu_meter.stop()
                self.phase_time[self.phase] += time.perf_counter() - t0
                self.step += 1
                self.epoch_step += 1
                self.low_steps += self.phase == "low"
                self.window.append(loss)
                self.window = self.window[-self.cfg.policy.interval:]
                self.history["step_loss"].append([self.step, loss, self.phase])
                self._policy_step()
                bar.show(self.step, f"epoch {self.epoch + 1} loss {loss:.4f} {self.phase}"
                         + self._device_progress())
                if self._stop or self.stop_file.exists():
                    self.stop_file.unlink(missing_ok=True)
                    self.save_checkpoint()
                    raise Interrupted(self.step, self.run_dir)
            self.epoch_step = 0
            if self.phase == "full":         # step: the low phase keeps its rate
                self.sched.step()             # (cosine: set per iteration, sched is constant)
            self.epoch += 1
            val = self.evaluate(self.data.val)
            rec = {"epoch": self.epoch, "step": self.step, "phase": self.phase,
                   "train_loss": float(np.mean([s[1] for s in self.history["step_loss"][-per_epoch:]])),
                   "val_mse": val["mse"], "lr": self.opt.param_groups[0]["lr"]}
            self.history["epochs"].append(rec)
            if val["mse"] < self.best["val"]:
                self.best = {"val": val["mse"], "epoch": self.epoch,
                             "state": copy.deepcopy(self.model.state_dict()),
                             "ranks": self.ranks}
            self.save_checkpoint()
            bar.show(self.step, f"epoch {self.epoch} val_mse {val['mse']:.4f} {self.phase}",
                     force=True)
            if until_epoch is not None and self.epoch >= until_epoch < t.epochs:
                return None
        return self.finish()

    def stop(self) -> None:
        """Ask the loop to stop after the current step: it checkpoints (mid-epoch) and raises
        :class:`Interrupted`; ``Trainer.resume`` continues exactly from there. Safe to call
        from a signal handler. A process that cannot reach the trainer (the simulator of an
        ``rtl`` run) creates ``run_dir/STOP`` instead."""
        self._stop = True

    # ---- results ---------------------------------------------------------------------------
    def _model_for(self, state, ranks):
        m = SpatialTransformer.for_data(self.cfg.model, self.data).to(self.device)
        if ranks is not None:
            self._lora(m, ranks)
        m.load_state_dict(state)
        if ranks is not None:
            # the frozen weights are the ones already in ReRAM: attach, do not re-program
            set_backend(m, self.backend, program=False, mapping=self.cfg.train.mapping)
        return m

    def finish(self) -> dict:
        final = self.evaluate(self.data.test)
        best_model = self._model_for(self.best["state"], self.best.get("ranks"))
        best = self.evaluate(self.data.test, best_model)
        metrics = {
            "test_mse": best["mse"], "test_mae": best["mae"], "best_epoch": self.best["epoch"],
            "final_test_mse": final["mse"], "final_test_mae": final["mae"],
            "switch_step": self.switch_step, "total_steps": self.step,
            "low_param_fraction": self.low_steps / max(self.step, 1),
            "ranks": self.ranks, "time_per_phase_s": self.phase_time,
            "policy": self.cfg.policy.name, "rank_mode": self.cfg.policy.ranks,
            "backend": self.cfg.train.backend,
            "app": self.data.name, "seed": self.cfg.train.seed,
            "trainable_params_low": (sum(p.numel() for p in self.model.parameters()
                                         if p.requires_grad) if self.phase == "low" else None),
            "units": "normalised (train mean/std of the target)",
        }
        if self.gpu_meter.on:
            metrics["gpu_measured"] = self.gpu_meter.result()
        write_results(self, metrics)
        return metrics

    # ---- checkpoint / resume -------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        return save_checkpoint(self)

    @classmethod
    def resume(cls, run_dir: Path, quiet: bool = False) -> "Trainer":
        """The run in ``run_dir`` at its checkpoint, to continue exactly."""
        s = load_checkpoint(run_dir, "resume from")
        tr = cls(RunConfig.from_dict(s["config"]), run_dir, quiet, _program=False)
        restore(tr, s)
        return tr

    @classmethod
    def deployed(cls, run_dir: Path, tile=None, age_s: float | None = None) -> "Trainer":
        """A finished run's final model deployed on freshly programmed ReRAM: the run's
        tiles, or ``tile`` (a :class:`hw.reram.TileConfig`) in every block, on the
        functional backend, ``age_s`` seconds after programming (drifting device models).
        For evaluation only (``evaluate``); nothing is written to the run folder. A
        trainer on the torch backend deploys the LoRA it trained on ideal arithmetic: how
        a device that training never saw changes the result."""
        import dataclasses
        s = load_checkpoint(run_dir, "deploy")
        if s["phase"] != "low":
            raise ValueError(f"{run_dir}: the run never switched, so no weights live in ReRAM")
        cfg = RunConfig.from_dict(s["config"])
        hw = cfg.hw if tile is None else dataclasses.replace(cfg.hw, tile=tile)
        cfg = dataclasses.replace(cfg, hw=hw,
                                  train=dataclasses.replace(cfg.train, backend="functional"))
        tr = cls.__new__(cls)
        tr.cfg, tr.run_dir, tr.quiet = cfg, Path(run_dir), True
        tr.device = _device(cfg.train.device)
        tr.data = load(cfg.data)
        tr.model = SpatialTransformer.for_data(cfg.model, tr.data).to(tr.device)
        tr.trace = OpTrace()
        tr._lora(tr.model, s["ranks"])
        tr.model.load_state_dict(s["model"])
        tr.ranks, tr.phase = list(s["ranks"]), "low"
        tr.backend = make_backend("functional", hw, tr.trace)
        set_backend(tr.model, tr.backend, mapping=cfg.train.mapping)
        if age_s is not None:
            tr.backend.device.age(age_s)
        return tr


@contextlib.contextmanager
def stop_on_sigint(stop):
    """While inside, the first Ctrl-C calls ``stop()`` (the run checkpoints after its
    current step and raises :class:`Interrupted`); a second one interrupts at once."""
    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.stderr.write("\nstopping after the current step (Ctrl-C again to abort)...\n")
        stop()
    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def train(cfg: RunConfig, run_dir: Path, quiet: bool = False) -> dict:
    return Trainer(cfg, run_dir, quiet).fit()
