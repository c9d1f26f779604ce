"""When to switch from full-parameter to low-parameter training, and at which ranks.

* :class:`PaperPolicy` — HpT's test as the authors' code does it: every ``k`` iterations,
  two plateaus must each hold for two checks in a row that also shrink (relative loss
  improvement below ``loss_tol``; relative change of one layer's Q/V weights below
  ``weight_tol``); then a LoRA copy trains alongside for ``k`` iterations and a two-sample
  t-test on the per-batch losses (``alpha``) decides: not significantly different ->
  switch; otherwise try again later.
* :class:`IntrinsicDimPolicy` — goes beyond the paper: measures the intrinsic dimension of
  each layer's weight-update trajectory (:func:`intrinsic_dimension`) and switches once the
  estimates are stable, giving each layer a LoRA rank equal to its dimension (bounded).
* :class:`EarlyPolicy` (``early``) — the intrinsic-dimension test on a short clock
  (snapshots every ``early_k`` iterations), then a cheap probe: a LoRA copy trains beside
  the full model for ``early_k`` iterations on the same batches and the switch happens
  when its mean loss is within ``probe_tol`` of the full model's; otherwise the estimates
  must settle again before the next probe.
* :class:`HeadroomPolicy` (``headroom``) — switches when what the rest of the full phase
  could still gain on held-out data is small: every ``k`` iterations it evaluates the full
  model on ``held_out`` validation windows, projects the remaining gain from the gain over
  the last doubling of iterations (:func:`projected_headroom`, log-linear in iterations)
  and switches once that projection, as a share of the held-out loss, has stayed within
  ``headroom_tol`` for ``headroom_stable`` checks. Ranks as :class:`IntrinsicDimPolicy`.
* :class:`BranchPolicy` (``branch``) — ``headroom``, plus one long LoRA trial early in the
  run: after ``branch_at`` of the budget a LoRA copy (a branch) starts from the full
  model and trains beside it on the same batches for ``branch_len`` of the budget; if its
  held-out loss is then at least ``branch_margin`` below the full model's, the run
  switches to the branch (its base weights are the ones frozen at the branch point).
  Otherwise the branch is dropped and ``headroom`` decides as usual. It finds the case
  ``headroom`` cannot see: LoRA on an early base generalising better than full training.
* ``full`` never switches; ``lora`` is low-parameter from the start; ``switch-at`` (a
  control for sweeps of the switch point) switches after exactly ``switch_at`` iterations,
  with rank ``lora_rank`` everywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

__all__ = ["PolicyConfig", "RANK_MODES", "PaperPolicy", "IntrinsicDimPolicy", "EarlyPolicy",
           "intrinsic_dimension", "HeadroomPolicy", "BranchPolicy", "projected_headroom",
           "welch_t_test", "t_quantile", "mean_ci", "make_policy", "POLICIES", "MEASURING"]

POLICIES = ("paper", "intrinsic-dim", "early", "headroom", "branch", "full", "lora",
            "switch-at")

#: The policies that measure each layer's update trajectory and can give measured ranks.
MEASURING = ("intrinsic-dim", "early", "headroom", "branch")

#: How the measuring policies (:data:`MEASURING`) give LoRA ranks: ``layer``, one rank
#: per layer from the joint trajectory of its Q and V weights; ``module``, one rank per
#: adapted module (each of ``lora_targets`` in each layer) from its own trajectory;
#: ``fixed``, ``lora_rank`` everywhere (the measurement only times the switch).
RANK_MODES = ("layer", "module", "fixed")


@dataclass(frozen=True)
class PolicyConfig:
    name: str = "paper"
    k: int = 20                   # iterations between checks (and length of the LoRA trial)
    loss_tol: float = 0.10        # relative loss improvement counted as a plateau
    weight_tol: float = 0.01      # relative Q/V weight change counted as a plateau
    alpha: float = 0.01           # t-test significance level
    watch_layer: int = -1         # the layer whose Q/V weights the paper test watches
    lora_rank: int = 8            # paper: r = 8, alpha = 64, dropout 0.1, on Q and V
    lora_alpha: float = 64.0
    lora_dropout: float = 0.1
    lora_targets: tuple = ("q", "v")  # encoder linears that get adapters (sw.model.hybrid.TARGETS)
    variance: float = 0.90        # intrinsic-dim: share of update variance to explain
    snapshots: int = 10           # intrinsic-dim: weight snapshots in the trajectory window
    stable_checks: int = 3        # intrinsic-dim: checks the estimates must hold
    min_rank: int = 2
    max_rank: int = 16
    ranks: str = "layer"          # intrinsic-dim/early: "layer", "module" or "fixed" (below)
    switch_at: int | None = None  # switch-at: iterations of full training before the switch
    early_k: int = 5              # early: iterations between checks (and the probe's length)
    early_snapshots: int = 8      # early: weight snapshots in the trajectory window
    early_stable: int = 2         # early: checks the estimates must hold before a probe
    probe_tol: float = 0.02       # early: the probe's LoRA loss may exceed full's by this share
    held_out: int = 256           # headroom: validation windows evaluated every k iterations
    headroom_tol: float = 0.01    # headroom: the projected remaining gain (share of the
                                  # held-out loss) below which the switch is allowed
    headroom_stable: int = 2      # headroom: checks in a row the projection must stay below
    headroom_confidence: float = 0.9  # headroom: one-sided confidence of the gain rate it
                                  # projects (the upper bound of the line's slope; 0.5: the
                                  # point estimate, as runs from before 2026-12-02)
    branch_at: float = 0.10       # branch: share of the budget after which the branch starts
    branch_len: float = 0.10      # branch: share of the budget the branch trains beside full
    branch_margin: float = 0.02   # branch: how far (share) below full's held-out loss the
                                  # branch's must be to be adopted
    branch_reference: str = "best"  # branch: full's held-out loss it must beat: "best" (the
                                  # lowest of its evaluations so far) or "last" (the one at
                                  # the verdict, as runs from before 2026-12-02)

    def __post_init__(self):
        if self.name not in POLICIES:
            raise ValueError(f"PolicyConfig.name must be one of {', '.join(POLICIES)}, "
                             f"not {self.name!r}")
        if self.name == "switch-at":
            if isinstance(self.switch_at, bool) or not isinstance(self.switch_at, int) \
                    or self.switch_at < 1:
                raise ValueError(f"PolicyConfig.switch_at must be a positive number of "
                                 f"iterations for the switch-at policy, not {self.switch_at!r}")
        elif self.switch_at is not None:
            raise ValueError(f"PolicyConfig.switch_at is for the switch-at policy, not "
                             f"{self.name!r}")
        if self.k < 2:
            raise ValueError(f"PolicyConfig.k must be at least 2, not {self.k}")
        from sw.model.hybrid import TARGETS
        object.__setattr__(self, "lora_targets", tuple(self.lora_targets))
        bad = [t for t in self.lora_targets if t not in TARGETS]
        if bad or not self.lora_targets or len(set(self.lora_targets)) != len(self.lora_targets):
            raise ValueError(f"PolicyConfig.lora_targets must be distinct names among "
                             f"{', '.join(TARGETS)}, not {', '.join(self.lora_targets) or 'nothing'}")
        for name in ("early_k", "early_snapshots", "early_stable"):
            lo = 3 if name == "early_snapshots" else 1 if name == "early_stable" else 2
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"PolicyConfig.{name} must be an integer >= {lo}, not {v!r}")
        if not 0 <= self.probe_tol < 1:
            raise ValueError(f"PolicyConfig.probe_tol must be in [0, 1), not {self.probe_tol}")
        for name, lo in (("held_out", 1), ("headroom_stable", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"PolicyConfig.{name} must be an integer >= {lo}, not {v!r}")
        if not 0.5 <= self.headroom_confidence < 1:
            raise ValueError(f"PolicyConfig.headroom_confidence must be in [0.5, 1), "
                             f"not {self.headroom_confidence}")
        if self.branch_reference not in ("best", "last"):
            raise ValueError(f"PolicyConfig.branch_reference must be best or last, "
                             f"not {self.branch_reference!r}")
        if not 0 < self.headroom_tol < 1:
            raise ValueError(f"PolicyConfig.headroom_tol must be in (0, 1), "
                             f"not {self.headroom_tol}")
        for name in ("branch_at", "branch_len"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
                raise ValueError(f"PolicyConfig.{name} must be a share of the budget in "
                                 f"(0, 1), not {v!r}")
        if self.branch_at + self.branch_len >= 1:
            raise ValueError(f"PolicyConfig.branch_at + branch_len must be below 1 (the "
                             f"branch must end within the budget), not "
                             f"{self.branch_at} + {self.branch_len}")
        if not 0 <= self.branch_margin < 1:
            raise ValueError(f"PolicyConfig.branch_margin must be in [0, 1), "
                             f"not {self.branch_margin}")
        if not 1 <= self.min_rank <= self.max_rank:
            raise ValueError("PolicyConfig.min_rank/max_rank must satisfy 1 <= min <= max")
        if self.ranks not in RANK_MODES:
            raise ValueError(f"PolicyConfig.ranks must be one of {', '.join(RANK_MODES)}, "
                             f"not {self.ranks!r}")
        if self.ranks != "layer" and self.name not in MEASURING:
            raise ValueError(f"PolicyConfig.ranks {self.ranks!r} is for the measuring "
                             f"policies ({', '.join(MEASURING)}), not {self.name!r}")

    @property
    def interval(self) -> int:
        """Iterations between the policy's checks (and the length of a LoRA trial)."""
        return self.early_k if self.name == "early" else self.k

    def to_dict(self) -> dict:
        return asdict(self)


# ---- statistics ------------------------------------------------------------------------
def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) (continued fraction, Numerical Recipes 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
    f = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
            c = 1.0 + num / c
            c = c if abs(c) > 1e-300 else 1e-300
            f *= c * d
        if abs(c * d - 1.0) < 1e-14:
            break
    return front * f / a


def welch_t_test(a, b) -> tuple[float, float]:
    """Two-sided Welch two-sample t-test: ``(t, p)``."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return 0.0, 1.0 if a.mean() == b.mean() else 0.0
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(t), float(t_sf2(t, df))


def t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability of Student's t with ``df`` degrees of freedom (any
    positive ``df``, fractional included): ``P(|T| >= |t|)``."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, not {df}")
    return _betainc(df / 2, 0.5, df / (df + t * t))


def t_quantile(level: float, df: float) -> float:
    """The ``t`` with ``P(|T| <= t) = level`` (e.g. 0.95: the two-sided 95 % critical
    value), by bisection on :func:`t_sf2`."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), not {level}")
    lo, hi = 0.0, 1.0
    while t_sf2(hi, df) > 1 - level:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_sf2(mid, df) > 1 - level else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2


def mean_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its Student-t confidence interval (``nan`` half-width for
    fewer than two values)."""
    v = np.asarray(values, float)
    if v.size == 0:
        raise ValueError("mean_ci needs at least one value")
    if v.size < 2:
        return float(v.mean()), float("nan")
    half = t_quantile(level, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)


def intrinsic_dimension(snapshots: np.ndarray, variance: float = 0.90) -> int:
    """Intrinsic dimension of a weight trajectory.

    ``snapshots[i]`` is the flattened weight at check ``i``. The updates between
    consecutive snapshots are stacked and centred; the estimate is the number of
    principal components (singular values squared, largest first) needed to explain
    ``variance`` of their total variance. An update trajectory confined to a
    ``d``-dimensional subspace gives ``d`` (up to the number of updates minus one).
    """
    s = np.asarray(snapshots, float)
    if s.ndim != 2 or len(s) < 3:
        raise ValueError("intrinsic_dimension needs at least 3 snapshots of a flat weight")
    upd = np.diff(s, axis=0)
    upd = upd - upd.mean(axis=0, keepdims=True)
    sv = np.linalg.svd(upd, compute_uv=False) ** 2
    if sv.sum() == 0:
        return 0
    share = np.cumsum(sv) / sv.sum()
    return int(np.searchsorted(share, variance - 1e-12) + 1)


def projected_headroom(steps, losses, total: int, confidence: float = 0.5) -> float | None:
    """What the rest of a ``total``-iteration budget could still gain on a held-out loss
    curve, as a share of the loss now: ``losses[i]`` was measured after ``steps[i]``
    iterations (increasing). A least-squares line of the loss against log(iterations)
    over the last doubling of iterations (the evaluations at steps in ``[t/2, t]``, ``t``
    the last) gives the gain per e-fold of iterations and the loss now (the line's value
    at ``t``, steadier than the last evaluation alone); the gain is projected to ``total``.
    ``confidence`` above 0.5 projects the gain rate's upper bound at that one-sided
    confidence instead of the fitted one (Student-t over the line's residuals, ``n - 2``
    degrees of freedom), so a few wobbling evaluations do not read as a flat curve; at
    0.5 (the point estimate) a curve that did not fall over the span projects 0. A curve
    that flattens faster than log-linear (most do) gains less than projected. ``None``
    while fewer than 3 evaluations lie in the span or the first of them is later than
    ``t/2``."""
    if not 0.5 <= confidence < 1:
        raise ValueError(f"projected_headroom: confidence must be in [0.5, 1), not {confidence}")
    steps, losses = list(steps), [float(v) for v in losses]
    if len(steps) != len(losses) or not steps:
        raise ValueError("projected_headroom needs as many steps as losses, at least one")
    t = steps[-1]
    if t >= total:
        return 0.0
    if not steps[0] <= t / 2:
        return None
    span = [i for i, s in enumerate(steps) if s >= t / 2]
    if len(span) < 3:
        return None
    x = np.log(np.asarray([steps[i] for i in span], float))
    y = np.asarray([losses[i] for i in span])
    slope, icpt = np.polyfit(x, y, 1)
    bound = 0.0
    if confidence > 0.5:
        resid = y - (icpt + slope * x)
        se = math.sqrt(float(resid @ resid) / (len(x) - 2) / float(((x - x.mean()) ** 2).sum()))
        bound = t_quantile(2 * confidence - 1, len(x) - 2) * se
    rate = max(-float(slope) + bound, 0.0)
    if rate == 0.0:
        return 0.0
    now = float(icpt + slope * math.log(t))
    return rate * math.log(total / t) / now if now > 0 else math.inf


def _qv_weights(model, layer: int) -> np.ndarray:
    att = model.layers[layer].attn
    get = lambda m: (m.base.weight if hasattr(m, "base") else m.weight)  # noqa: E731
    return torch.cat([get(att.q).detach().flatten(), get(att.v).detach().flatten()]).cpu().numpy()


class _Plateau:
    """``value < tol`` for two checks in a row, the second smaller than the first."""

    def __init__(self, tol):
        self.tol, self.prev = tol, None

    def update(self, value: float) -> bool:
        ok = self.prev is not None and self.prev < self.tol and value < self.tol and value < self.prev
        self.prev = value
        return ok

    def reset(self):
        self.prev = None


class PaperPolicy:
    """See module docstring. The trainer calls :meth:`check` every ``k`` iterations with
    the mean loss of the last ``k`` iterations; while a trial runs it feeds both models'
    per-batch losses to :meth:`trial_losses` and asks :meth:`trial_verdict` at the end."""

    def __init__(self, cfg: PolicyConfig):
        self.cfg = cfg
        self.loss_plateau, self.weight_plateau = _Plateau(cfg.loss_tol), _Plateau(cfg.weight_tol)
        self.last_loss = self.last_w = None
        self.log: list[dict] = []
        self.trials = 0

    def ranks(self, model) -> list[int]:
        return [self.cfg.lora_rank] * len(model.layers)

    def check(self, step: int, loss: float, model) -> bool:
        """True when a LoRA trial should start."""
        w = _qv_weights(model, self.cfg.watch_layer)
        rel_loss = rel_w = None
        if self.last_loss is not None:
            rel_loss = (self.last_loss - loss) / abs(self.last_loss)
            rel_w = float(np.linalg.norm(w - self.last_w) / max(np.linalg.norm(self.last_w), 1e-12))
        self.last_loss, self.last_w = loss, w
        a = self.loss_plateau.update(rel_loss) if rel_loss is not None else False
        b = self.weight_plateau.update(rel_w) if rel_w is not None else False
        self.log.append({"step": step, "loss": loss, "rel_loss_improvement": rel_loss,
                         "rel_weight_change": rel_w, "loss_plateau": a, "weight_plateau": b})
        return a and b

    def trial_verdict(self, full_losses, lora_losses, step: int) -> bool:
        t, p = welch_t_test(full_losses, lora_losses)
        switch = p >= self.cfg.alpha
        self.trials += 1
        self.log.append({"step": step, "trial": self.trials, "t": t, "p": p, "switch": switch})
        if not switch:
            self.loss_plateau.reset()
            self.weight_plateau.reset()
        return switch

    def state_dict(self) -> dict:
        return {"loss_prev": self.loss_plateau.prev, "w_prev": self.weight_plateau.prev,
                "last_loss": self.last_loss, "last_w": self.last_w, "log": self.log,
                "trials": self.trials}

    def load_state_dict(self, s: dict) -> None:
        self.loss_plateau.prev, self.weight_plateau.prev = s["loss_prev"], s["w_prev"]
        self.last_loss, self.last_w, self.log, self.trials = (s["last_loss"], s["last_w"],
                                                              s["log"], s["trials"])


class IntrinsicDimPolicy:
    """Switch when every trajectory's intrinsic-dimension estimate has held (within one)
    for ``stable_checks`` checks and the loss improvement is below ``loss_tol``. The
    trajectories and the ranks follow ``cfg.ranks`` (:data:`RANK_MODES`): per layer (its
    Q/V weights), per adapted module, or measured per layer with ``lora_rank``
    everywhere; measured ranks are clipped to ``[min_rank, max_rank]``. ``dims`` holds the
    estimates in :meth:`units` order."""

    snapshots_key, stable_key = "snapshots", "stable_checks"

    def __init__(self, cfg: PolicyConfig):
        self.cfg = cfg
        self.n_snapshots = getattr(cfg, self.snapshots_key)
        self.n_stable = getattr(cfg, self.stable_key)
        self.snaps: list[list[np.ndarray]] = []
        self.history: list[dict] = []        # per check: step and the dimension per unit
        self.log = self.history
        self.last_loss = None
        self.stable = 0
        self.dims: list[int] | None = None

    def units(self, model) -> list[tuple[int, str | None]]:
        """What is measured: ``(layer, None)`` for a layer's Q/V weights, or
        ``(layer, target)`` for one adapted module."""
        layers = range(len(model.layers))
        if self.cfg.ranks == "module":
            return [(i, t) for i in layers for t in self.cfg.lora_targets]
        return [(i, None) for i in layers]

    def _weights(self, model, unit) -> np.ndarray:
        layer, target = unit
        if target is None:
            return _qv_weights(model, layer)
        from sw.model.hybrid import base_weight
        # a copy: the optimizer updates the weight in place
        return base_weight(model, layer, target).detach().flatten().cpu().numpy().copy()

    def ranks(self, model) -> list:
        """LoRA ranks per layer: ints, or ``{target: rank}`` with ``ranks="module"``."""
        layers = len(model.layers)
        if self.cfg.ranks == "fixed" or self.dims is None:
            return [self.cfg.lora_rank] * layers
        clip = [int(min(self.cfg.max_rank, max(self.cfg.min_rank, d))) for d in self.dims]
        if self.cfg.ranks == "layer":
            return clip
        per = len(self.cfg.lora_targets)
        return [dict(zip(self.cfg.lora_targets, clip[i * per:(i + 1) * per]))
                for i in range(layers)]

    def check(self, step: int, loss: float, model) -> bool:
        units = self.units(model)
        if not self.snaps:
            self.snaps = [[] for _ in units]
        for k, unit in enumerate(units):
            self.snaps[k].append(self._weights(model, unit))
            self.snaps[k] = self.snaps[k][-self.n_snapshots:]
        rel_loss = None if self.last_loss is None else (self.last_loss - loss) / abs(self.last_loss)
        self.last_loss = loss
        if len(self.snaps[0]) < self.n_snapshots:
            self.history.append({"step": step, "dims": None, "rel_loss_improvement": rel_loss})
            return False
        dims = [intrinsic_dimension(np.stack(s), self.cfg.variance) for s in self.snaps]
        same = self.dims is not None and all(abs(a - b) <= 1 for a, b in zip(dims, self.dims))
        self.stable = self.stable + 1 if same else 0
        self.dims = dims
        self.history.append({"step": step, "dims": dims, "rel_loss_improvement": rel_loss,
                             "stable": self.stable})
        return self.stable >= self.n_stable and rel_loss is not None \
            and rel_loss < self.cfg.loss_tol

    def state_dict(self) -> dict:
        return {"snaps": self.snaps, "history": self.history, "last_loss": self.last_loss,
                "stable": self.stable, "dims": self.dims}

    def load_state_dict(self, s: dict) -> None:
        self.snaps, self.history, self.last_loss = s["snaps"], s["history"], s["last_loss"]
        self.log = self.history
        self.stable, self.dims = s["stable"], s["dims"]


class EarlyPolicy(IntrinsicDimPolicy):
    """The intrinsic-dimension test on a short clock (``early_k``, ``early_snapshots``,
    ``early_stable``), followed by a probe (a LoRA trial of ``early_k`` iterations run by
    the trainer, as the paper's): switch when the LoRA copy's mean per-batch loss is at
    most ``1 + probe_tol`` times the full model's over the same batches; otherwise the
    estimates must hold for ``early_stable`` more checks before the next probe."""
    snapshots_key, stable_key = "early_snapshots", "early_stable"

    def __init__(self, cfg: PolicyConfig):
        super().__init__(cfg)
        self.trials = 0

    def trial_verdict(self, full_losses, lora_losses, step: int) -> bool:
        full, lora = float(np.mean(full_losses)), float(np.mean(lora_losses))
        switch = lora <= full * (1 + self.cfg.probe_tol)
        self.trials += 1
        self.history.append({"step": step, "trial": self.trials, "full_loss": full,
                             "lora_loss": lora, "switch": switch})
        if not switch:
            self.stable = 0
        return switch

    def state_dict(self) -> dict:
        return {**super().state_dict(), "trials": self.trials}

    def load_state_dict(self, s: dict) -> None:
        super().load_state_dict(s)
        self.trials = s["trials"]


class HeadroomPolicy(IntrinsicDimPolicy):
    """Switch when the full phase has little left to gain on held-out data: at every check
    (every ``k`` iterations) the trainer passes the full model's loss on ``held_out``
    validation windows and the budget; :func:`projected_headroom` projects what the rest
    of the budget could still gain, and the switch happens once that share of the
    held-out loss has been at most ``headroom_tol`` for ``headroom_stable`` checks in a
    row. Whatever LoRA recovers of that remainder after the switch only helps, so the
    loss of switching is at most the remainder — as far as the projection holds (it
    misses gains hidden in the loss's wobble and the late gains of an annealing schedule;
    README, Switch policies). The weight trajectories are
    measured as by :class:`IntrinsicDimPolicy` for the ranks (``lora_rank`` everywhere if
    the switch comes before a full window of snapshots)."""

    uses_held_out = True

    def __init__(self, cfg: PolicyConfig):
        super().__init__(cfg)
        self.evals: list[tuple[int, float]] = []
        self.below = 0

    def check(self, step: int, loss: float, model, held_out=None, total=None) -> bool:
        if held_out is None or total is None:
            raise ValueError("the headroom policy needs the held-out loss and batches "
                             "(held_out=(loss, batches)) and the budget (total)")
        super().check(step, loss, model)      # trajectories and dims, for the ranks
        val, batches = held_out
        self.evals.append((step, float(val)))
        h = projected_headroom([s for s, _ in self.evals], [v for _, v in self.evals], total,
                               self.cfg.headroom_confidence)
        self.below = self.below + 1 if h is not None and h <= self.cfg.headroom_tol else 0
        self.history[-1].update({"held_out_loss": float(val), "held_out_batches": batches,
                                 "headroom": h, "below": self.below})
        return self.below >= self.cfg.headroom_stable

    def state_dict(self) -> dict:
        return {**super().state_dict(), "evals": self.evals, "below": self.below}

    def load_state_dict(self, s: dict) -> None:
        super().load_state_dict(s)
        self.evals = [tuple(e) for e in s["evals"]]
        self.below = s["below"]


class BranchPolicy(HeadroomPolicy):
    """:class:`HeadroomPolicy` plus one long LoRA trial (a branch). At the first check
    after ``branch_at`` of the ``total`` budget (:meth:`start_branch`), the trainer copies
    the full model, adds adapters (the ranks of that moment) and trains the copy beside
    the full model on the same batches. At the first check after ``branch_len`` more of
    the budget (:meth:`branch_due`), or earlier if ``headroom`` asks for the switch, it
    evaluates the copy on the same held-out windows as the full model and asks
    :meth:`branch_verdict`: adopt the branch when its loss is at most ``1 -
    branch_margin`` times the full model's — its lowest held-out loss so far
    (``branch_reference`` best: one evaluation of the full model wobbles by several %,
    and a wobble up must not adopt a branch), or the one at the verdict (last). A
    rejected branch is dropped (its iterations are charged to the run's cost all the
    same) and never tried again; ``headroom`` still decides. An adopted branch's low
    phase starts where the branch ends, so the trial's iterations count as full-phase
    (GPU) iterations twice: once for the full model, once for the branch."""

    branches = True

    def __init__(self, cfg: PolicyConfig):
        super().__init__(cfg)
        self.branch_step: int | None = None
        self.trials = 0

    def start_branch(self, step: int, total: int) -> bool:
        """True (once) at the first check at or after ``branch_at`` of the budget, when
        the branch would still end within it."""
        if self.branch_step is not None or step < self.cfg.branch_at * total \
                or step + self.cfg.branch_len * total >= total:
            return False
        self.branch_step = step
        return True

    def branch_due(self, step: int, total: int) -> bool:
        """True once the branch has trained ``branch_len`` of the budget."""
        return self.branch_step is not None and \
            step - self.branch_step >= self.cfg.branch_len * total

    def branch_verdict(self, full_loss: float, lora_loss: float, batches: int,
                       step: int) -> bool:
        """Adopt the branch? Logs the trial (its iterations and held-out batches count in
        the run's cost)."""
        ref = float(full_loss)
        if self.cfg.branch_reference == "best":
            ref = min([ref] + [v for _, v in self.evals])
        switch = lora_loss <= (1 - self.cfg.branch_margin) * ref
        self.trials += 1
        self.history.append({"step": step, "trial": self.trials,
                             "trial_steps": step - self.branch_step,
                             "full_held_out_loss": float(full_loss),
                             "full_reference_loss": ref,
                             "lora_held_out_loss": float(lora_loss),
                             "held_out_batches": batches, "switch": switch})
        return switch

    def state_dict(self) -> dict:
        return {**super().state_dict(), "branch_step": self.branch_step,
                "trials": self.trials}

    def load_state_dict(self, s: dict) -> None:
        super().load_state_dict(s)
        self.branch_step, self.trials = s["branch_step"], s["trials"]


def make_policy(cfg: PolicyConfig):
    if cfg.name == "paper":
        return PaperPolicy(cfg)
    if cfg.name == "intrinsic-dim":
        return IntrinsicDimPolicy(cfg)
    if cfg.name == "early":
        return EarlyPolicy(cfg)
    if cfg.name == "headroom":
        return HeadroomPolicy(cfg)
    if cfg.name == "branch":
        return BranchPolicy(cfg)
    return None
