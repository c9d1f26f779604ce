"""Training on realistic ReRAM: deploying a finished run on other tiles, and the table."""

import math

import pytest

from hw.manycore import ManycoreConfig
from hw.reram import TileConfig
from hw.systolic import SystolicConfig
from sw.data import DataConfig
from sw.model.transformer import ModelConfig
from sw.train.policy import PolicyConfig
from sw.experiments.realism import MODES, format_table, summarise
from sw.train.trainer import RunConfig, TrainConfig, Trainer

TILE = TileConfig(rows=16, cols=16, write_latency=1).ideal()


def _cfg(tile, policy="switch-at"):
    return RunConfig(
        model=ModelConfig(d_model=16, layers=2, heads=2, ffn=16, reduce=8, dropout=0.1),
        data=DataConfig(app="wind", steps=200, stations=6, window=4),
        hw=ManycoreConfig.single(SystolicConfig(rows=8, cols=8, k_depth=16), tile, 64),
        train=TrainConfig(epochs=2, batch=16, seed=0, backend="functional"),
        policy=PolicyConfig(name=policy, switch_at=3 if policy == "switch-at" else None,
                            lora_rank=2))


def test_deployed_reproduces_the_run_and_sees_other_devices(tmp_path):
    m = Trainer(_cfg(TILE), tmp_path, quiet=True).fit()
    same = Trainer.deployed(tmp_path)
    assert same.evaluate(same.data.test)["mse"] == m["final_test_mse"]
    fitted = TILE.changed(device="wan2022")
    a = Trainer.deployed(tmp_path, fitted)
    b = Trainer.deployed(tmp_path, fitted)
    mse = a.evaluate(a.data.test)["mse"]
    assert mse != m["final_test_mse"] and math.isfinite(mse)
    assert a.backend.device.tiles and all(
        t.cfg.device == "wan2022" for grid in a.backend.device.tiles.values()
        for line in grid for t in line)
    assert b.evaluate(b.data.test)["mse"] == mse              # deterministic deployment
    aged = Trainer.deployed(tmp_path, fitted, age_s=86400.0)
    assert aged.evaluate(aged.data.test)["mse"] != mse
    assert not (tmp_path / "STOP").exists()


def test_deployed_needs_a_run_that_switched(tmp_path):
    Trainer(_cfg(TILE, policy="full"), tmp_path, quiet=True).fit()
    with pytest.raises(ValueError, match="never switched"):
        Trainer.deployed(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer.deployed(tmp_path / "nothing")


def test_summary_pairs_seeds_against_ideal():
    rows = []
    for seed, (ideal, fitted) in enumerate([(1.0, 1.1), (2.0, 2.4), (1.0, 1.0)]):
        rows += [{"app": "wind", "seed": seed, "mode": "ideal", "final_test_mse": ideal},
                 {"app": "wind", "seed": seed, "mode": "fitted, in the loop",
                  "final_test_mse": fitted}]
    s = summarise(rows)["wind"]
    assert s["ideal"]["vs_ideal_pct"][0] == 0.0
    assert s["fitted, in the loop"]["vs_ideal_pct"][0] == pytest.approx(10.0)
    assert s["fitted, in the loop"]["mse"][0] == pytest.approx(4.5 / 3)
    table = format_table(summarise(rows))
    assert table.index("| wind | ideal |") < table.index("| wind | fitted, in the loop |")
    assert "+10.0 ±" in table and set(MODES) >= {"ideal", "fitted, in the loop"}
