"""The cost model's systolic cycle model against the RTL: random shapes co-simulated."""

import json

import numpy as np
import pytest

from hw.systolic import SystolicConfig
from sw.cost.estimate import systolic_cycles

# ---- the cycle model against the RTL --------------------------------------------------------
CYCLE_CONFIGS = [SystolicConfig(rows=r, cols=c, in_width=w, k_depth=d)
                 for (r, c, d, w) in [(2, 3, 8, 8), (3, 5, 7, 16), (4, 4, 16, 8), (8, 8, 32, 16)]]


@pytest.mark.parametrize("sa", CYCLE_CONFIGS, ids=lambda c: c.name)
def test_cycle_model_equals_the_rtl(sa, tmp_path):
    """Random shapes (6 per configuration, 24 in all) co-simulated on the RTL: its active
    cycles equal the cost model's cycle model exactly."""
    from cosim.sim import build_systolic_sim, run_cocotb
    rng = np.random.default_rng(sa.rows * 100 + sa.cols)
    shapes = [[int(rng.integers(1, 3 * sa.rows + 2)), int(rng.integers(1, 3 * sa.k_depth + 2)),
               int(rng.integers(1, 3 * sa.cols + 2))] for _ in range(6)]
    out = tmp_path / "cycles.json"
    tests, failed, log = run_cocotb(build_systolic_sim(sa), "cosim.tb_cycles", name="cycles",
                                    extra_env={"HPT_SHAPES": json.dumps(shapes),
                                               "HPT_OUT": str(out)})
    assert (tests, failed) == (1, 0), log
    got = json.loads(out.read_text())
    assert [g["shape"] for g in got] == shapes
    for g in got:
        assert g["active"] == systolic_cycles(sa, 1, *g["shape"]), g
