"""``verilator --lint-only -Wall`` over generated Verilog, with a short waiver list."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .toolchain import ToolchainError, check_verilator, verilator_env, verilator_exe

__all__ = ["WAIVERS", "LintError", "lint"]

#: Warnings that Amaranth/Yosys output triggers by construction, and why each is benign.
WAIVERS = {
    "WIDTH": "Yosys writes constants at their minimal width (`op == 1'h1`); Verilog's "
             "context-determined sizing extends them exactly as Amaranth means.",
    "PROCASSINIT": "Amaranth declares every register with its reset value as initial value "
                   "(`reg [7:0] x = 8'h00;`) and assigns it in an always block.",
    "CASEINCOMPLETE": "Yosys emits `casez` without `default` after a default assignment "
                      "that already covers the missing cases.",
    "DECLFILENAME": "Amaranth writes a component's submodules into its top module's file, "
                    "named after their place in it (`tile.datapath`).",
    "UNUSEDSIGNAL": "Amaranth emits debug aliases of view fields (`a__payload[0]`), and full "
                    "products/sums whose high bits the wrapping accumulators drop on purpose.",
}


class LintError(RuntimeError):
    """Verilator lint found warnings outside the waiver list."""


def lint(v_path: Path, top: str | None = None, extra=()) -> str:
    """Lint ``v_path`` (with the modules it instantiates in ``extra``); return Verilator's
    output, or raise :class:`LintError`."""
    check_verilator()
    v_path = Path(v_path)
    if not v_path.is_file():
        raise ToolchainError(f"no Verilog file at {v_path}")
    cmd = [verilator_exe(), "--lint-only", "-Wall", *(f"-Wno-{w}" for w in WAIVERS),
           str(v_path), *map(str, extra)]
    if top:
        cmd[1:1] = ["--top-module", top]
    res = subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True)
    out = res.stdout + res.stderr
    if res.returncode != 0 or "%Warning" in out or "%Error" in out:
        raise LintError(f"verilator --lint-only -Wall failed on {v_path}:\n{out.strip()}")
    return out
