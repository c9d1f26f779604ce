"""hpt fidelity: the sweep, the error budget, drift and the command line."""

import json

import pytest

from hw.reram import TileConfig
from hpt.cli import main, tile_fields
from sw.device.fidelity import budget, drift, sweep

SMALL = TileConfig(rows=32, cols=16)


def test_sweep_points_and_the_int8_floor():
    r = sweep(SMALL, devices=("ideal", "wan2022"), encodings=("offset", "differential"),
              adc_bits=(5, 9), calibrations=("worst",), cell_bits=(2,), vectors=8)
    assert r["units"] == "percent" and len(r["series"]) == 4
    ideal = {s["encoding"]: s for s in r["series"] if s["device"] == "ideal"}
    # lossless ADC, ideal cells: the tile adds nothing to the int8 product
    for enc, s in ideal.items():
        lossless = r["adc_bits"].index(9)
        if s["lossless_adc_bits"] <= 9:
            assert s["vs_int8_pct"][lossless] == 0.0
            assert s["vs_float_pct"][lossless] == pytest.approx(r["int8_floor_pct"])
    wan = [s for s in r["series"] if s["device"] == "wan2022"]
    assert all(min(s["vs_int8_pct"]) > 5 for s in wan)          # a measured device shows


def test_budget_parts_and_weight_error():
    b = budget(SMALL, vectors=8)
    rows = {(r["encoding"], r["part"]): r for r in b["rows"]}
    for enc in ("offset", "differential"):
        assert rows[(enc, "read noise only")]["weight_error_pct"] == 0.0
        assert rows[(enc, "all")]["weight_error_pct"] == \
            rows[(enc, "programming + relaxation only")]["weight_error_pct"]
        assert rows[(enc, "all")]["vs_int8_pct"] > \
            rows[(enc, "programming + relaxation only")]["vs_int8_pct"]
    # conductance-dependent relaxation: small weights sit near G_min with differential
    # pairs, mid-range with offset encoding
    assert rows[("differential", "programming + relaxation only")]["weight_error_pct"] < \
        rows[("offset", "programming + relaxation only")]["weight_error_pct"]
    with pytest.raises(ValueError, match="not a Gaussian device model"):
        budget(SMALL, devices=("uniform",))


def test_drift_grows_with_time():
    d = drift(SMALL, devices=("wan2022",), encodings=("offset",), times=(1.0, 86400.0),
              vectors=8)
    e = d["series"][0]["vs_int8_pct"]
    assert e[1] > e[0]


def test_fidelity_command_takes_tile_fields(tmp_path):
    flags = {f for f, *_ in tile_fields()}
    assert {"device", "encoding", "adc-calibration", "prog-variation", "adc-dnl-mlsb"} <= flags
    rc = main(["fidelity", "--rows", "16", "--cols", "8", "--devices", "ideal", "wan2022",
               "--encodings", "differential", "--calibrations", "weights",
               "--sweep-adc-bits", "6", "8", "--sweep-cell-bits", "2", "--vectors", "4",
               "--drift-devices", "wan2022", "--times", "1", "3600", "--quiet",
               "--out", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "reram_fidelity.json").read_text())
    assert res["sweep"]["base"]["rows"] == 16 and len(res["sweep"]["series"]) == 2
    assert res["budget"]["rows"] and res["drift"]["times_s"] == [1.0, 3600.0]
    for name in ("reram_fidelity.png", "reram_fidelity_cells.png", "reram_drift.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_fidelity_command_rejects_a_device_that_does_not_drift(tmp_path, capsys):
    rc = main(["fidelity", "--rows", "8", "--cols", "8", "--devices", "ideal",
               "--sweep-adc-bits", "8", "--sweep-cell-bits", "2", "--vectors", "2",
               "--drift-devices", "uniform", "--quiet", "--out", str(tmp_path)])
    assert rc != 0
    assert "--drift-devices: 'uniform' does not change" in capsys.readouterr().err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
