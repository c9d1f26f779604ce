"""Bounded wave windows: the harness opens an FST at a run cycle and closes it N cycles
later (Verilator ignores $dumpoff; cosim/waves.cpp closes the trace)."""

import pytest

from cosim.sim import build_systolic_sim, run_cocotb, wave_plusargs
from cosim.waves import fst_time_range
from hw.systolic import SystolicConfig

CLOCK_NS = 10.0            # the harness's clock: always #5 at 1 ns

#: builds a traced Verilator model and reads FST files: the simulator tier


@pytest.fixture(scope="module")
def sim():
    return build_systolic_sim(SystolicConfig(rows=2, cols=3, k_depth=4), waves=True)


def test_the_generated_model_still_has_trace_dump_close(sim):
    """cosim/waves.cpp closes the FST through Verilator's generated (private)
    ``Vtop__Syms::_traceDumpClose``; an upgrade that drops it must fail here."""
    syms = list(sim.build_dir.rglob("Vtop__Syms.h"))
    assert syms, f"no Vtop__Syms.h under {sim.build_dir}"
    assert "_traceDumpClose" in syms[0].read_text(), (
        "Verilator's Vtop__Syms has no _traceDumpClose any more: update cosim/waves.cpp")


@pytest.mark.parametrize("start, cycles", [(0, 40), (300, 25)])
def test_window_holds_the_requested_cycles(sim, tmp_path, start, cycles):
    f = tmp_path / "w.fst"
    tests, failed, log = run_cocotb(sim, "cosim.tb_systolic", testcase="matmul_random_and_extreme",
                                    waves=(f, start, cycles), name=f"waves{start}")
    assert (tests, failed) == (1, 0), log
    first, last = fst_time_range(f)
    first_cycle, span = first * 1e9 / CLOCK_NS, (last - first) * 1e9 / CLOCK_NS
    assert first_cycle >= start                      # run cycles exclude reset and idle gaps
    assert cycles <= span <= cycles + 3, (first_cycle, span)


def test_window_arguments_are_checked(sim, tmp_path):
    with pytest.raises(ValueError, match="--wave-cycles >= 1"):
        wave_plusargs(sim, (tmp_path / "w.fst", 0, 0))
    with pytest.raises(ValueError, match="not an FST"):
        (tmp_path / "x.fst").write_bytes(b"\x01" * 400)
        fst_time_range(tmp_path / "x.fst")
