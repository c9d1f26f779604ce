"""Switch-policy statistics: Welch's t-test and the intrinsic-dimension estimator."""

import numpy as np
import pytest

from sw.train.policy import PolicyConfig, _Plateau, intrinsic_dimension, welch_t_test


@pytest.mark.parametrize("df,t,p", [(2, 4.303, 0.05), (10, 2.228, 0.05), (10, 3.169, 0.01),
                                    (30, 2.042, 0.05)])
def test_t_distribution_tail_matches_tables(df, t, p):
    # equal-size samples with equal variances give Welch df = 2n - 2; build them to hit t
    n = df // 2 + 1
    base = np.linspace(-1, 1, n)
    s = base.std(ddof=1)
    shift = t * s * np.sqrt(2 / n)
    got_t, got_p = welch_t_test(base + shift, base)
    assert got_t == pytest.approx(t, rel=1e-9)
    assert got_p == pytest.approx(p, abs=2e-4)


def test_t_test_extremes():
    assert welch_t_test([1, 2, 3], [1, 2, 3])[1] == pytest.approx(1.0)
    assert welch_t_test([0.0, 0.1, 0.2, 0.1] * 5, [5.0, 5.1, 5.2, 5.1] * 5)[1] < 1e-10


@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_intrinsic_dimension_recovers_known_dimension(dim):
    rng = np.random.default_rng(dim)
    basis = np.linalg.qr(rng.standard_normal((500, dim)))[0].T        # dim x 500
    steps = rng.standard_normal((200, dim))                             # equal spreads
    traj = np.cumsum(steps @ basis, axis=0) + 1e-4 * rng.standard_normal((200, 500))
    assert intrinsic_dimension(traj, variance=0.90) == dim


def test_intrinsic_dimension_needs_snapshots():
    with pytest.raises(ValueError, match="at least 3 snapshots"):
        intrinsic_dimension(np.zeros((2, 5)))


def test_plateau_needs_two_shrinking_checks():
    p = _Plateau(0.1)
    assert [p.update(v) for v in (0.5, 0.05, 0.04, 0.06, 0.01)] == [False, False, True, False, True]


def test_policy_config_validates():
    with pytest.raises(ValueError, match=r"PolicyConfig\.name"):
        PolicyConfig(name="sometimes")
    with pytest.raises(ValueError, match=r"PolicyConfig\.k"):
        PolicyConfig(k=1)


def _t_tail_by_integration(t, df, n=200_001):
    """P(|T| >= t) by integrating Student's density (Simpson) from 0 to t."""
    import math
    x = np.linspace(0.0, t, n)
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = c * (1 + x * x / df) ** (-(df + 1) / 2)
    h = x[1] - x[0]
    inner = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return 1.0 - 2.0 * inner


@pytest.mark.parametrize("df", [1.0, 2.0, 2.5, 3.7, 9.3, 27.6])
def test_t_tail_and_quantile_at_fractional_degrees_of_freedom(df):
    import mpmath

    from sw.train.policy import t_quantile, t_sf2
    for t in (0.3, 1.0, 2.5):
        assert t_sf2(t, df) == pytest.approx(_t_tail_by_integration(t, df), abs=1e-7)
    # an independent implementation: mpmath's regularized incomplete beta function,
    # P(|T| > t) = I_{df / (df + t^2)}(df / 2, 1 / 2), in 50-digit arithmetic
    with mpmath.workdps(50):
        for t in (0.05, 0.3, 1.0, 2.5, 7.0, 40.0):
            want = float(mpmath.betainc(df / 2, 0.5, 0, df / (df + t * t), regularized=True))
            assert t_sf2(t, df) == pytest.approx(want, rel=1e-9, abs=1e-14), t
    q = t_quantile(0.95, df)
    assert t_sf2(q, df) == pytest.approx(0.05, abs=1e-10)
    assert q == pytest.approx(12.7062047, rel=1e-6) if df == 1.0 else True
    # closed forms: Cauchy (df 1) and df 2
    assert t_sf2(2.0, 1.0) == pytest.approx(1 - 2 / np.pi * np.arctan(2.0), abs=1e-12)
    assert t_sf2(2.0, 2.0) == pytest.approx(1 - 2.0 / np.sqrt(6.0), abs=1e-12)


def test_mean_ci_uses_the_t_interval():
    from sw.train.policy import mean_ci
    m, h = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    # t(0.975, 4) = 2.776445; s = sqrt(2.5); half = t * s / sqrt(5)
    assert m == 3.0 and h == pytest.approx(2.776445 * np.sqrt(2.5) / np.sqrt(5), rel=1e-6)
    assert np.isnan(mean_ci([1.0])[1])
    with pytest.raises(ValueError, match="at least one value"):
        mean_ci([])


def test_switch_at_config_validates():
    assert PolicyConfig(name="switch-at", switch_at=5).switch_at == 5
    for bad in (None, 0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"PolicyConfig\.switch_at must be a positive"):
            PolicyConfig(name="switch-at", switch_at=bad)
    with pytest.raises(ValueError, match=r"PolicyConfig\.switch_at is for the switch-at policy"):
        PolicyConfig(name="paper", switch_at=5)


def test_early_policy_probes_after_its_estimates_settle_and_backs_off_when_lora_loses():
    """On a synthetic trajectory (Q/V weights moving in a fixed 2-D subspace), the early
    policy asks for a probe once its window is full and the estimates held; a losing
    probe resets the stability count, a probe within tolerance switches."""
    import torch

    from sw.model.transformer import ModelConfig, SpatialTransformer
    from sw.train.policy import EarlyPolicy
    cfg = PolicyConfig(name="early", early_k=5, early_snapshots=8, early_stable=2,
                       loss_tol=0.5, probe_tol=0.02)
    assert cfg.interval == 5 and PolicyConfig(name="paper", k=7).interval == 7
    torch.manual_seed(0)
    model = SpatialTransformer(ModelConfig(d_model=8, layers=1, heads=2, ffn=8, reduce=4), 3)
    rng = np.random.default_rng(1)
    dirs = [torch.from_numpy(rng.standard_normal((2, 8, 8))).float() for _ in range(2)]
    pol = EarlyPolicy(cfg)
    fired = []
    for i in range(12):
        with torch.no_grad():                  # a step in a fixed 2-D subspace of Q and V
            c = torch.from_numpy(rng.standard_normal(2)).float()
            model.layers[0].attn.q.weight += 0.01 * (c[0] * dirs[0][0] + c[1] * dirs[0][1])
            model.layers[0].attn.v.weight += 0.01 * (c[0] * dirs[1][0] + c[1] * dirs[1][1])
        fired.append(pol.check(5 * (i + 1), 1.0 - 0.01 * i, model))
    # window of 8 snapshots full at check 8, first estimate there; held at checks 9 and 10
    assert fired[:9] == [False] * 9 and fired[9] is True
    assert pol.dims == [2] and pol.ranks(model) == [2]
    assert pol.trial_verdict([1.0] * 5, [1.05] * 5, 55) is False and pol.stable == 0
    assert pol.trial_verdict([1.0] * 5, [1.015] * 5, 60) is True
    assert [h["switch"] for h in pol.history if "trial" in h] == [False, True]
    state = pol.state_dict()
    again = EarlyPolicy(cfg)
    again.load_state_dict(state)
    assert again.trials == 2 and again.dims == [2]


def test_early_policy_config_validates():
    for name, bad in (("early_k", 1), ("early_snapshots", 2), ("early_stable", 0)):
        with pytest.raises(ValueError, match=rf"PolicyConfig\.{name} must be an integer"):
            PolicyConfig(name="early", **{name: bad})
    with pytest.raises(ValueError, match=r"PolicyConfig\.probe_tol"):
        PolicyConfig(name="early", probe_tol=1.5)


@pytest.mark.parametrize("mode", ["layer", "module", "fixed"])
def test_ranks_per_layer_per_module_or_fixed(mode):
    """Q moves in a 2-D subspace and V in a 5-D one: per layer the joint trajectory gives
    one rank, per module each gets its own (2 and 5), fixed gives lora_rank; the LoRA
    layers apply_lora builds from those ranks train that many parameters."""
    import torch

    from sw.model.hybrid import apply_lora, lora_layers
    from sw.model.transformer import ModelConfig, SpatialTransformer
    from sw.train.policy import IntrinsicDimPolicy
    cfg = PolicyConfig(name="intrinsic-dim", snapshots=12, stable_checks=1, loss_tol=0.5,
                       min_rank=1, max_rank=16, lora_rank=8, ranks=mode, variance=0.999)
    torch.manual_seed(0)
    model = SpatialTransformer(ModelConfig(d_model=8, layers=2, heads=2, ffn=8, reduce=4), 3)
    rng = np.random.default_rng(3)
    dq = torch.from_numpy(rng.standard_normal((2, 8, 8))).float()
    dv = torch.from_numpy(rng.standard_normal((5, 8, 8))).float()
    pol = IntrinsicDimPolicy(cfg)
    for i in range(16):
        with torch.no_grad():
            for layer in model.layers:
                cq = torch.from_numpy(rng.standard_normal(2)).float()
                cv = torch.from_numpy(rng.standard_normal(5)).float()
                layer.attn.q.weight += 0.01 * torch.einsum("k,kij->ij", cq, dq)
                layer.attn.v.weight += 0.01 * torch.einsum("k,kij->ij", cv, dv)
        pol.check(20 * (i + 1), 1.0 - 0.01 * i, model)
    ranks = pol.ranks(model)
    if mode == "module":
        assert pol.units(model) == [(0, "q"), (0, "v"), (1, "q"), (1, "v")]
        assert ranks == [{"q": 2, "v": 5}, {"q": 2, "v": 5}]
    elif mode == "layer":
        assert ranks == pol.dims == [7, 7]                  # the joint 2 + 5 dimensions
    else:
        assert ranks == [8, 8] and len(pol.dims) == 2        # measured, but not used
    apply_lora(model, dict(enumerate(ranks)), targets=("q", "v"))
    got = {lo.name: lo.A.shape[0] for lo in lora_layers(model)}
    want = {f"layers.{i}.attn.{t}": (r[t] if isinstance(r, dict) else r)
            for i, r in enumerate(ranks) for t in ("q", "v")}
    assert got == want
    # each adapter trains r x (in + out) parameters
    assert sum(p.numel() for lo in lora_layers(model) for p in (lo.A, lo.B)) == \
        sum(r * 16 for r in want.values())


def test_rank_modes_are_for_the_measuring_policies():
    assert PolicyConfig(name="early", ranks="module").ranks == "module"
    with pytest.raises(ValueError, match=r"PolicyConfig\.ranks must be one of"):
        PolicyConfig(name="intrinsic-dim", ranks="per-head")
    with pytest.raises(ValueError, match=r"PolicyConfig\.ranks 'module' is for the measuring"):
        PolicyConfig(name="paper", ranks="module")


def test_projected_headroom_on_known_curves():
    """A loss linear in log(iterations) projects exactly its remaining gain, also with
    noise that averages out over the last doubling; a flat or rising curve projects 0;
    too little history projects None; the budget's end is 0."""
    import math

    from sw.train.policy import projected_headroom
    total = 1000
    steps = [20 * (i + 1) for i in range(8)]                # 20 .. 160
    curve = [1.0 - 0.1 * math.log(s) for s in steps]       # loss = 1 - 0.1 ln(t)
    want = (0.1 * math.log(total / 160)) / curve[-1]        # the exact remaining gain
    assert projected_headroom(steps, curve, total) == pytest.approx(want, rel=1e-9)
    # only the last doubling counts: an earlier, steeper part changes nothing
    early = [5.0, 4.0, 3.0] + curve[3:]
    assert projected_headroom(steps, early, total) == pytest.approx(want, rel=1e-9)
    # one outlier at the last point (a loss that rose by 2 %) moves the fitted line of
    # the span (80 .. 160) but does not zero the projection, as a two-point rate would
    jitter = curve[:3] + [v + e for v, e in zip(curve[3:], [0, 0, 0, 0, 0.02])]
    assert projected_headroom(steps, jitter, total) > 0.5 * want
    assert projected_headroom([20, 40], [1.0, 0.9], total) is None       # 2 points in span
    assert projected_headroom([30, 40, 50], [1.0, 0.9, 0.8], total) is None  # 30 > 50 / 2
    assert projected_headroom([20, 40, 60, 80], [1.0, 1.1, 1.2, 1.3], total) == 0.0
    assert projected_headroom([20, 30, 40], [1.0, 0.95, 0.9], 40) == 0.0
    with pytest.raises(ValueError, match="as many steps as losses"):
        projected_headroom([20, 40], [1.0], total)


def _headroom_run(curve, cfg, total=1000):
    import torch

    from sw.model.transformer import ModelConfig, SpatialTransformer
    from sw.train.policy import HeadroomPolicy
    torch.manual_seed(0)
    model = SpatialTransformer(ModelConfig(d_model=8, layers=1, heads=2, ffn=8, reduce=4), 3)
    pol = HeadroomPolicy(cfg)
    for i, v in enumerate(curve):
        if pol.check(cfg.k * (i + 1), 1.0, model, held_out=(v, 4), total=total):
            return pol, cfg.k * (i + 1)
    return pol, None


def test_headroom_policy_switches_once_the_projection_stays_small():
    """On synthetic held-out curves: a curve that keeps falling log-linearly never
    switches within the budget; one that flattens switches after ``headroom_stable``
    checks below ``headroom_tol``; one noisy dip back above the tolerance resets the
    count. Every check logs the held-out loss, its batches and the projection; the state
    round-trips."""
    import math

    from sw.train.policy import HeadroomPolicy
    cfg = PolicyConfig(name="headroom", k=20, headroom_tol=0.02, headroom_stable=2)
    falling = [1.0 - 0.1 * math.log(20 * (i + 1)) for i in range(45)]
    pol, at = _headroom_run(falling, cfg)
    assert at is None and all(h["headroom"] is None or h["headroom"] > 0.02
                              for h in pol.history)
    # falls until check 5 (step 100), flat after it
    flat = [1.0 / (i + 1) if i < 5 else 0.2 for i in range(45)]
    pol, at = _headroom_run(flat, cfg)
    # step 180 is the first whose last doubling (90 .. 180) is flat; step 200 holds it
    assert at == 200 and pol.below == 2
    assert [h["headroom"] for h in pol.history][:3] == [None] * 3   # 3 points in the span
    assert [h["held_out_batches"] for h in pol.history] == [4] * 10
    assert pol.history[-1]["held_out_loss"] == 0.2
    assert pol.history[-1]["headroom"] == pytest.approx(0.0, abs=1e-12)
    # the point estimate (confidence 0.5): a 0.5 % wobble at steps 180/200 projects about
    # 1 %, still below the tolerance
    noisy = flat[:8] + [0.199, 0.2005] + [0.2] * 30
    point = PolicyConfig(name="headroom", k=20, headroom_tol=0.02, headroom_stable=2,
                         headroom_confidence=0.5)
    pol, at = _headroom_run(noisy, point)
    assert at == 200 and 0 < pol.history[-1]["headroom"] < 0.02
    # a 25 % fall at step 220 is a curve still learning: the count resets, the switch waits
    dip = flat[:8] + [0.19, 0.2] + [0.15] * 31
    pol, at = _headroom_run(dip, cfg)
    assert pol.history[10]["headroom"] > 0.02 and at is not None and at >= 400
    again = HeadroomPolicy(cfg)
    again.load_state_dict(pol.state_dict())
    assert again.evals == pol.evals and again.below == pol.below


def test_headroom_confidence_does_not_read_an_early_wobble_as_a_flat_curve():
    """Weather (40 km/h flow), seed 3: the held-out loss of the first 100 iterations. It
    wobbled up and down after iteration 40, so the point estimate projected no gain at 80
    and 100 and switched at 100 (the run ended 9.7 % above full training). The upper
    bound of the rate at 90 % confidence projects most of the loss still to gain; with
    more evaluations of a flat curve the bound closes and the switch comes."""
    from sw.train.policy import projected_headroom
    steps, seen = [20, 40, 60, 80, 100], [0.0443, 0.0210, 0.0206, 0.0221, 0.0208]
    assert projected_headroom(steps, seen, 1310) == 0.0
    assert projected_headroom(steps[:4], seen[:4], 1310) == 0.0
    assert projected_headroom(steps, seen, 1310, confidence=0.9) > 0.3
    pol, at = _headroom_run(seen, PolicyConfig(name="headroom", k=20, headroom_confidence=0.5),
                            total=1310)
    assert at == 100
    pol, at = _headroom_run(seen, PolicyConfig(name="headroom", k=20), total=1310)
    assert at is None
    # the same +-3 % wobble, kept up: the bound shrinks as the evaluations accumulate
    wobble = seen + [0.0208 * (1 + 0.03 * (-1) ** i) for i in range(60)]
    pol, at = _headroom_run(wobble, PolicyConfig(name="headroom", k=20), total=1310)
    assert at is not None and at >= 400
    # exact: a line with known residuals has the closed-form bound
    import math
    x = [math.log(s) for s in (40, 60, 80)]
    t = 3.0776835371752527                                 # one-sided 90 %, 1 df
    y = [1.0, 0.9, 0.95]
    b, a = np.polyfit(x, y, 1)
    r = np.asarray(y) - (a + b * np.asarray(x))
    se = math.sqrt(float(r @ r) / 1 / float(((np.asarray(x) - np.mean(x)) ** 2).sum()))
    want = (-b + t * se) * math.log(1000 / 80) / (a + b * x[-1])
    assert projected_headroom([20, 40, 60, 80], [2.0] + y, 1000, 0.9) == pytest.approx(want)
    with pytest.raises(ValueError, match="confidence must be in"):
        projected_headroom(steps, seen, 1310, confidence=0.4)


def test_headroom_policy_needs_the_held_out_loss_and_validates():
    import torch

    from sw.model.transformer import ModelConfig, SpatialTransformer
    from sw.train.policy import HeadroomPolicy
    model = SpatialTransformer(ModelConfig(d_model=8, layers=1, heads=2, ffn=8, reduce=4), 3)
    with pytest.raises(ValueError, match="needs the held-out loss"):
        HeadroomPolicy(PolicyConfig(name="headroom")).check(20, 1.0, model)
    torch.manual_seed(0)
    for name, bad in (("held_out", 0), ("headroom_stable", 0), ("held_out", 2.5)):
        with pytest.raises(ValueError, match=rf"PolicyConfig\.{name} must be an integer"):
            PolicyConfig(name="headroom", **{name: bad})
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match=r"PolicyConfig\.headroom_tol"):
            PolicyConfig(name="headroom", headroom_tol=bad)
    assert PolicyConfig(name="headroom", ranks="module").ranks == "module"


def test_branch_policy_starts_once_ends_on_time_and_adopts_only_a_clear_gain():
    """The branch starts at the first check at or after ``branch_at`` of the budget (once,
    and only if it can end within it), is due ``branch_len`` of the budget later, and is
    adopted only when its held-out loss is at least ``branch_margin`` below full's; the
    verdict logs the trial's iterations and held-out batches; the state round-trips."""
    from sw.train.policy import BranchPolicy
    cfg = PolicyConfig(name="branch", k=20, branch_at=0.1, branch_len=0.1, branch_margin=0.02)
    pol = BranchPolicy(cfg)
    total = 1310
    assert [s for s in range(20, 400, 20) if pol.start_branch(s, total)] == [140]
    assert not pol.start_branch(160, total) and pol.branch_step == 140
    # 131 iterations after 140: due at the first check >= 271
    assert [s for s in range(160, 400, 20) if pol.branch_due(s, total)][0] == 280
    assert not pol.branch_verdict(1.0, 0.981, 8, 280)       # 1.9 % better: not enough
    assert pol.branch_verdict(1.0, 0.98, 8, 280)            # 2 %: adopted
    assert pol.history[-1] == {"step": 280, "trial": 2, "trial_steps": 140,
                               "full_held_out_loss": 1.0, "full_reference_loss": 1.0,
                               "lora_held_out_loss": 0.98, "held_out_batches": 8,
                               "switch": True}
    # the full model's best held-out loss so far is the reference: weather (40 km/h),
    # seed 4, whose full model wobbled up from 0.0192 to 0.0211 at the verdict, where the
    # branch's 0.0205 was adopted under the last evaluation and ended 8.9 % above full
    pol.evals = [(240, 0.0210), (260, 0.01923), (280, 0.02112)]
    assert not pol.branch_verdict(0.02112, 0.02050, 8, 280)
    assert pol.history[-1]["full_reference_loss"] == 0.01923
    last = BranchPolicy(PolicyConfig(name="branch", branch_reference="last"))
    last.branch_step, last.evals = 140, list(pol.evals)
    assert last.branch_verdict(0.02112, 0.02050, 8, 280)
    again = BranchPolicy(cfg)
    again.load_state_dict(pol.state_dict())
    assert (again.branch_step, again.trials) == (140, 3)
    # checks every 20 of 100: the first at or after 50 is 60, and 60 + 45 passes the end
    late = BranchPolicy(PolicyConfig(name="branch", branch_at=0.5, branch_len=0.45))
    assert not any(late.start_branch(s, 100) for s in range(20, 100, 20))
    assert not late.branch_due(99, 100)


@pytest.mark.parametrize("bad, match", [
    (dict(branch_at=0.0), r"branch_at must be a share"),
    (dict(branch_len=1.0), r"branch_len must be a share"),
    (dict(branch_at="0.1"), r"branch_at must be a share"),
    (dict(branch_at=0.6, branch_len=0.4), r"branch_at \+ branch_len must be below 1"),
    (dict(branch_margin=1.0), r"branch_margin must be in"),
    (dict(branch_margin=-0.01), r"branch_margin must be in"),
    (dict(branch_reference="first"), r"branch_reference must be best or last"),
    (dict(headroom_confidence=0.4), r"headroom_confidence must be in \[0.5, 1\)"),
    (dict(headroom_confidence=1.0), r"headroom_confidence must be in"),
])
def test_branch_fields_are_validated(bad, match):
    with pytest.raises(ValueError, match=match):
        PolicyConfig(name="branch", **bad)
