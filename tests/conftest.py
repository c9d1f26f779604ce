"""Test tiers by folder, and the fixtures several folders share.

- ``tests/unit/``: host code, golden models, configs, cost model, CLI; no simulator.
- ``tests/gateware/``: Amaranth simulation of the RTL, Verilog generation and lint.
- ``tests/cosim/``: Verilator builds driven by cocotb (also marked ``sim``).

The fast tier, ``pytest -m "not cosim"``, runs offline and builds no Verilator model.
"""

from pathlib import Path

import pytest

TIERS = ("unit", "gateware", "cosim")


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test belongs in tests/unit, "
                                    "tests/gateware or tests/cosim (its folder is its tier)")
        item.add_marker(tier)
        if tier == "cosim":
            item.add_marker("sim")


@pytest.fixture(scope="session")
def cotrain_cfg():
    """The co-simulated training run of tests/cosim/test_cotrain.py, whose chip the
    host-side checks (tests/unit/test_cotrain_checks.py) also size."""
    from hw.manycore import ManycoreConfig
    from hw.reram import TileConfig
    from hw.systolic import SystolicConfig
    from sw.data import DataConfig
    from sw.model.transformer import ModelConfig
    from sw.train.policy import PolicyConfig
    from sw.train.trainer import RunConfig, TrainConfig
    return RunConfig(
        # one layer: its six frozen 16x16 linears (the hpt mapping) on six tiles keep the
        # chip (and its build, shared with tests/cosim/test_chip_cocotb.py) small; three
        # systolic cores share the products (hw.placement.assign_products)
        model=ModelConfig(d_model=16, layers=1, heads=2, ffn=16, reduce=8, dropout=0.1),
        data=DataConfig(app="wind", steps=90, stations=4, window=4),
        train=TrainConfig(epochs=3, batch=8, backend="rtl", lr_step_epochs=1, mapping="hpt"),
        policy=PolicyConfig(name="paper", k=3, loss_tol=2.0, weight_tol=1.0, alpha=1e-12,
                            lora_rank=2),
        hw=ManycoreConfig.single(SystolicConfig(rows=4, cols=4, k_depth=16),
                                 TileConfig(rows=16, cols=16, write_latency=2, verify_iters=3,
                                            prog_variation=6, verify_tol=1, read_noise=5,
                                            stuck_on_ppm=20_000, adc_bits=6, seed=3,
                                            rows_per_cycle=4), 6, systolic_cores=3))
