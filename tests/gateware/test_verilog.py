"""Verilog generation: CLI, determinism, ports against the signature, lint."""

import json

import pytest

from hw.lint import LintError, lint
from hw.reram import ReramTile, TileConfig
from hw.systolic import SystolicConfig, SystolicCore
from hw.verilog import generate, parse_ports, port_list
from hpt.cli import main

CFGS = [SystolicConfig(rows=1, cols=1, in_width=8, k_depth=2),
        SystolicConfig(rows=3, cols=5, in_width=16, k_depth=7),
        SystolicConfig(rows=2, cols=3, in_width=8, acc_width=16, k_depth=8),
        SystolicConfig(rows=16, cols=16, in_width=8),
        TileConfig(rows=1, cols=1, cell_bits=1),
        TileConfig(rows=8, cols=3, cell_bits=4, dac_bits=2, read_noise=3, stuck_on_ppm=1000,
                   stuck_off_ppm=1000),
        TileConfig(rows=32, cols=32).ideal()]


def component(cfg):
    return SystolicCore(cfg) if isinstance(cfg, SystolicConfig) else ReramTile(cfg)


def test_cli_writes_verilog_and_json(tmp_path, capsys):
    rc = main(["verilog", "systolic", "--rows", "3", "--cols", "5", "--in-width", "16",
               "--k-depth", "7", "--out", str(tmp_path), "--lint"])
    assert rc == 0
    cfg = SystolicConfig(rows=3, cols=5, in_width=16, k_depth=7)
    meta = json.loads((tmp_path / f"{cfg.name}.json").read_text())
    assert meta["top"] == cfg.name
    assert SystolicConfig.from_dict(meta["config"]) == cfg
    assert "lint: verilator --lint-only -Wall clean" in capsys.readouterr().out


def test_generation_is_deterministic(tmp_path):
    args = ["verilog", "systolic", "--rows", "2", "--cols", "3", "--in-width", "8"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    for suffix in (".v", ".json"):
        (fa,) = (tmp_path / "a").glob(f"*{suffix}")
        assert fa.read_bytes() == (tmp_path / "b" / fa.name).read_bytes()


def test_bad_config_writes_nothing_and_names_the_field(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["verilog", "systolic", "--in-width", "1", "--out", str(out)])
    assert rc == 2
    assert "SystolicConfig.in_width" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: c.name)
def test_pyverilog_ports_match_signature(cfg, tmp_path):
    core = component(cfg)
    v_path, _ = generate(core, cfg.name, tmp_path)
    parsed = parse_ports(v_path, cfg.name)
    expected = {p["name"]: (p["dir"], p["width"]) for p in port_list(core)}
    assert parsed == expected
    if isinstance(cfg, SystolicConfig):
        assert expected["a__payload"] == ("input", cfg.rows * cfg.in_width)
        assert expected["result__payload"] == ("output", cfg.cols * cfg.acc_width)
    else:
        n = max(cfg.rows, cfg.cols)
        assert expected["w__payload"] == ("input", cfg.cols * cfg.weight_bits)
        assert expected["vout__payload"] == ("output", n * cfg.out_width)


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: c.name)
def test_lint_clean_with_waivers(cfg, tmp_path):
    v_path, _ = generate(component(cfg), cfg.name, tmp_path)
    lint(v_path, cfg.name)


def test_lint_reports_real_problems(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input wire a, output wire y);\n  wire unused_and_undriven;\n"
                   "  assign y = a & b_undeclared;\nendmodule\n")
    with pytest.raises(LintError, match="bad.v"):
        lint(bad, "bad")


def test_cli_reram_tile(tmp_path, capsys):
    rc = main(["verilog", "reram-tile", "--rows", "8", "--cols", "3", "--cell-bits", "4",
               "--adc-bits", "6", "--out", str(tmp_path), "--lint"])
    assert rc == 0
    cfg = TileConfig(rows=8, cols=3, cell_bits=4, adc_bits=6)
    meta = json.loads((tmp_path / f"{cfg.name}.json").read_text())
    assert TileConfig.from_dict(meta["config"]) == cfg
    rc = main(["verilog", "reram-tile", "--weight-bits", "7", "--out", str(tmp_path / "bad")])
    assert rc == 2
    assert "TileConfig.weight_bits" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_cli_chip(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["verilog", "chip", "--sa-rows", "2", "--sa-cols", "3", "--sa-k-depth", "4",
                 "--tiles", "2", "--tile-rows", "4", "--tile-cols", "4", "--ideal",
                 "--out", str(out), "--lint"]) == 0
    text = capsys.readouterr().out
    assert "lint: verilator --lint-only -Wall clean for chip_sa2x3_t2x4x4" in text
    tops = sorted(p.name for p in out.glob("*.v"))
    assert len(tops) == 3 and any(t.startswith("chip_sa2x3_t2x4x4") for t in tops)
    top = next(out.glob("chip_*.json"))
    assert json.loads(top.read_text())["config"]["tiles_per_core"] == 2
    assert main(["verilog", "chip", "--tiles", "32", "--out", str(tmp_path / "bad")]) == 2
    assert "the RTL chip holds 1..31 ReRAM blocks (harness channels); this ManycoreConfig " \
        "has 32" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_generation_is_skipped_only_for_the_same_generator_key(tmp_path, monkeypatch):
    """A second generate() of the same component and config keeps the files without
    converting again; another config, a missing or edited key, or no config converts."""
    from amaranth.back import verilog
    import hw.verilog as hv
    cfg = SystolicConfig(rows=2, cols=3, in_width=8, k_depth=4)
    v, j = generate(SystolicCore(cfg), cfg.name, tmp_path, config=cfg.to_dict())
    text, meta = v.read_bytes(), json.loads(j.read_text())
    assert meta["generator"] == hv.generator_key(SystolicCore(cfg), cfg.name, cfg.to_dict())
    calls = []
    real = verilog.convert
    monkeypatch.setattr(verilog, "convert", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert generate(SystolicCore(cfg), cfg.name, tmp_path, config=cfg.to_dict()) == (v, j)
    assert calls == [] and v.read_bytes() == text
    other = SystolicConfig(rows=2, cols=3, in_width=8, k_depth=5)
    assert hv.generator_key(SystolicCore(other), cfg.name, other.to_dict()) != meta["generator"]
    generate(SystolicCore(other), cfg.name, tmp_path, config=other.to_dict())
    assert calls == [1] and v.read_bytes() != text
    generate(SystolicCore(cfg), cfg.name, tmp_path, config=cfg.to_dict())
    assert calls == [1, 1] and v.read_bytes() == text
    j.write_text(json.dumps({**meta, "generator": "stale"}))
    generate(SystolicCore(cfg), cfg.name, tmp_path, config=cfg.to_dict())
    v.unlink()
    generate(SystolicCore(cfg), cfg.name, tmp_path, config=cfg.to_dict())
    generate(SystolicCore(cfg), cfg.name, tmp_path)                # no config: no key
    generate(SystolicCore(cfg), cfg.name, tmp_path)
    assert len(calls) == 6 and v.read_bytes() == text
