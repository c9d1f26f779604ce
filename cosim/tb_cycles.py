"""cocotb: measure the systolic core's RTL cycles for given product shapes.

Run by tests/cosim/test_cycle_model.py to hold the cost model's cycle model
(:func:`sw.cost.estimate.systolic_cycles`) against the RTL. ``HPT_SHAPES`` is a JSON list of
``[m, k, n]``; the RTL's active cycles of each tiled product (operands random, results
checked against the golden model) go to the JSON file ``HPT_OUT``.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np

from hw.systolic import SystolicConfig
from sw.golden.systolic import build_program, matmul

from .systolic_driver import SystolicDriver

CFG = SystolicConfig.from_dict(json.loads(os.environ["HPT_CONFIG"]))


@cocotb.test()
async def cycles_of_shapes(dut):
    drv = SystolicDriver(dut, CFG)
    await drv.reset()
    rng = np.random.default_rng(11)
    out = []
    for m, k, n in json.loads(os.environ["HPT_SHAPES"]):
        A = rng.integers(CFG.in_min, CFG.in_max, (m, k), endpoint=True)
        B = rng.integers(CFG.in_min, CFG.in_max, (k, n), endpoint=True)
        got, cycles, active = await drv.run_program(build_program(CFG, A, B))
        np.testing.assert_array_equal(got, matmul(CFG, A, B))
        out.append({"shape": [m, k, n], "active": int(active), "cycles": int(cycles)})
    with open(os.environ["HPT_OUT"], "w") as f:
        json.dump(out, f)
