"""``hpt``: the command line of the HpT co-design harness.

    hpt verilog systolic --rows 16 --cols 16 --in-width 8 --out build/verilog [--lint]
    hpt sim systolic --rows 4 --cols 4 --in-width 8      # cocotb testbench under Verilator
    hpt bench [--out build/bench.json]                    # native vs co-simulated throughput
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _add_systolic_args(p: argparse.ArgumentParser) -> None:
    from hw.systolic import SystolicConfig
    d = SystolicConfig()
    p.add_argument("--rows", type=int, default=d.rows, help="PE rows (default %(default)s)")
    p.add_argument("--cols", type=int, default=d.cols, help="PE columns (default %(default)s)")
    p.add_argument("--in-width", type=int, default=d.in_width,
                   help="signed operand width in bits (default %(default)s)")
    p.add_argument("--acc-width", type=int, default=None,
                   help="wrapping accumulator width (default 2*in-width+16, at most 64)")
    p.add_argument("--k-depth", type=int, default=d.k_depth,
                   help="A/B scratchpad depth in vectors (default %(default)s)")


def _systolic_config(args):
    from hw.systolic import SystolicConfig
    return SystolicConfig(rows=args.rows, cols=args.cols, in_width=args.in_width,
                          acc_width=args.acc_width, k_depth=args.k_depth)


def cmd_verilog(args) -> int:
    from hw.lint import lint
    from hw.systolic import SystolicCore
    from hw.verilog import generate

    cfg = _systolic_config(args)
    v_path, j_path = generate(SystolicCore(cfg), cfg.name, args.out, config=cfg.to_dict())
    print(f"wrote {v_path}\nwrote {j_path}")
    if args.lint:
        lint(v_path, cfg.name)
        print(f"lint: verilator --lint-only -Wall clean for {v_path}")
    return 0


def cmd_sim(args) -> int:
    from cosim.sim import build_systolic_sim, run_cocotb

    cfg = _systolic_config(args)
    print(f"building {cfg.name} (cached under build/sim/) ...", flush=True)
    sim = build_systolic_sim(cfg)
    tests, failed, log = run_cocotb(sim, "cosim.tb_systolic", testcase=args.test or None,
                                    seed=args.seed)
    print(f"{tests - failed} passed, {failed} failed  (log: {log})")
    return 1 if failed or not tests else 0


def cmd_bench(args) -> int:
    from cosim.bench import bench_systolic, merge_results

    results = bench_systolic(repeats=args.repeats)
    path = merge_results(results, args.out)
    for r in results:
        extra = f"  ratio {r['ratio']:.2f}" if "ratio" in r else ""
        print(f"{r['name']:45s} {r['cycles_per_s'] / 1e6:6.3f} M cycles/s{extra}")
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verilog", help="generate Verilog and a JSON description")
    blocks = p.add_subparsers(dest="block", required=True)
    q = blocks.add_parser("systolic", help="the systolic-array core")
    _add_systolic_args(q)
    q.add_argument("--out", type=Path, default=Path("build/verilog"), help="output directory")
    q.add_argument("--lint", action="store_true", help="also run verilator --lint-only -Wall")
    q.set_defaults(func=cmd_verilog)

    p = sub.add_parser("sim", help="run a block's cocotb testbench under Verilator")
    blocks = p.add_subparsers(dest="block", required=True)
    q = blocks.add_parser("systolic", help="the systolic-array core")
    _add_systolic_args(q)
    q.add_argument("--test", action="append", help="run only this cocotb test (repeatable)")
    q.add_argument("--seed", type=int, default=1, help="cocotb random seed")
    q.set_defaults(func=cmd_sim)

    p = sub.add_parser("bench", help="benchmarks; results merged into build/bench.json")
    p.add_argument("--out", type=Path, default=None, help="JSON file (default build/bench.json)")
    p.add_argument("--repeats", type=int, default=3, help="best of N runs (default %(default)s)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv=None) -> int:
    from hw.lint import LintError
    from hw.toolchain import ToolchainError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, ToolchainError, LintError) as exc:
        print(f"hpt: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (ValueError, TypeError)) else 1


if __name__ == "__main__":
    sys.exit(main())
