"""A run folder's files, written and read in one place: the checkpoint (what a
:class:`sw.train.trainer.Trainer` saves, and how a resumed one is restored, exactly), the results
(``metrics.json``, ``history.json``, ``config.json``, ``trace.json``) and the loss plot.
The trainer keeps the loop; this module knows the files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

__all__ = ["CHECKPOINT", "save_checkpoint", "load_checkpoint", "restore", "write_results",
           "plot_loss"]

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(tr) -> Path:
    """Everything the trainer ``tr`` needs to continue exactly (model, optimizer,
    schedule, policy, trace, RNG states, device counters), written atomically."""
    state = {
        "config": tr.cfg.to_dict(), "epoch": tr.epoch, "step": tr.step,
        "epoch_step": tr.epoch_step, "gpu_meter": tr.gpu_meter.state_dict(),
        "phase": tr.phase, "ranks": tr.ranks, "switch_step": tr.switch_step,
        "low_steps": tr.low_steps, "window": tr.window, "history": tr.history,
        "model": tr.model.state_dict(), "opt": tr.opt.state_dict(),
        "sched": tr.sched.state_dict(), "best": tr.best, "phase_time": tr.phase_time,
        "policy": tr.policy.state_dict() if tr.policy is not None else None,
        "trace": tr.trace.to_list(), "rng_torch": torch.get_rng_state(),
        "trial": None if tr.trial is None else {
            "model": tr.trial[0].state_dict(), "opt": tr.trial[1].state_dict(),
            "full": tr.trial[2], "lora": tr.trial[3], "ranks": tr.trial[4]},
        "rng_numpy": np.random.get_state(),
        "backend": tr.backend.state_dict() if tr.backend is not None else None,
    }
    path = tr.run_dir / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(run_dir: Path, what: str = "resume from") -> dict:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to {what}")
    return torch.load(path, weights_only=False)


def restore(tr, s: dict) -> None:
    """Bring a freshly built trainer ``tr`` (same configuration, nothing programmed) to
    the checkpoint ``s``: switched if it was, ReRAM programmed once from the restored
    weights, optimizer, schedule, policy, trace, trial and RNG states as saved."""
    from sw.device.backends import OpTrace
    from sw.model.hybrid import set_backend
    from sw.model.transformer import SpatialTransformer
    if s["phase"] == "low" and tr.phase != "low":
        tr.step = s["switch_step"]
        tr._switch(s["ranks"], program=False)
    tr.model.load_state_dict(s["model"])
    if tr.backend is not None:            # program ReRAM (once) from the restored weights
        set_backend(tr.model, tr.backend, mapping=tr.cfg.train.mapping)
        tr.backend.load_state_dict(s.get("backend") or {})
    tr.opt.load_state_dict(s["opt"])
    tr.sched.load_state_dict(s["sched"])
    tr.epoch_step = s.get("epoch_step", 0)
    tr.gpu_meter.load_state_dict(s.get("gpu_meter") or {})
    for k in ("epoch", "step", "ranks", "switch_step", "low_steps", "window", "history",
              "best", "phase_time"):
        setattr(tr, k, s[k])
    if tr.policy is not None and s["policy"] is not None:
        tr.policy.load_state_dict(s["policy"])
    tr.trace.rows = OpTrace.from_list(s["trace"]).rows
    if s["trial"] is not None:
        tm = SpatialTransformer.for_data(tr.cfg.model, tr.data).to(tr.device)
        tr._lora(tm, s["trial"]["ranks"])
        tm.load_state_dict(s["trial"]["model"])
        topt = tr._optimizer(tr.cfg.train.low_lr or 1.0, tm)   # rate from its state
        topt.load_state_dict(s["trial"]["opt"])
        tr.trial = (tm, topt, s["trial"]["full"], s["trial"]["lora"], s["trial"]["ranks"])
    torch.set_rng_state(s["rng_torch"])
    np.random.set_state(s["rng_numpy"])


def write_results(tr, metrics: dict) -> None:
    """A finished run's files: metrics, history (with the policy's log), configuration,
    op trace and ``loss.png``."""
    out = tr.run_dir
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "history.json").write_text(json.dumps(
        {**tr.history, "policy": getattr(tr.policy, "log", [])}, indent=1) + "\n")
    (out / "config.json").write_text(json.dumps(tr.cfg.to_dict(), indent=2) + "\n")
    tr.trace.save(out / "trace.json")
    plot_loss(tr.history, tr.switch_step,
              f"{tr.data.name}: policy {tr.cfg.policy.name}, backend {tr.cfg.train.backend}",
              out / "loss.png")


def plot_loss(history: dict, switch_step: int | None, title: str, path: Path) -> None:
    """Training loss per step and validation MSE per epoch, log scale, switch marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [s[0] for s in history["step_loss"]]
    losses = [s[1] for s in history["step_loss"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, linewidth=0.6, label="train loss (per step)")
    ev = history["epochs"]
    ax.plot([e["step"] for e in ev], [e["val_mse"] for e in ev], "o-", label="validation MSE")
    if switch_step is not None:
        ax.axvline(switch_step, color="red", linestyle="--",
                   label=f"switch to low-parameter (step {switch_step})")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("MSE (normalised)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
