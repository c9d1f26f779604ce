"""Switch-policy statistics: Welch's t-test and the intrinsic-dimension estimator."""

import numpy as np
import pytest

from sw.policy import PolicyConfig, _Plateau, intrinsic_dimension, welch_t_test


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
