"""The three uses of dependencies' private interfaces, each isolated in one place, pinned
here so that an upgrade that moves them fails loudly and names the place to fix:

* cocotb_tools' Verilator runner ``_build_command`` (cosim/sim.py ``_insert_runtime_step``:
  Verilator's runtime objects, compiled once per flag set, copied in before ``make``;
  no public hook runs a step between verilating and compiling, and ccache, Verilator's
  public OBJCACHE route, is not on PyPI);
* ``torch.utils._python_dispatch.TorchDispatchMode`` (sw/cost/opcount.py: counting the kernels
  of a training step);
* Verilator's generated ``Vtop__Syms::_traceDumpClose`` (cosim/waves.cpp: closing an FST
  window from the harness; checked where a traced model is built, tests/test_waves.py).
"""

import inspect


def test_cocotb_runner_build_command():
    import cocotb
    from cocotb_tools.runner import get_runner
    runner = get_runner("verilator")
    assert hasattr(runner, "_build_command"), (
        f"cocotb {cocotb.__version__}: the Verilator runner has no _build_command; "
        "cosim/sim.py _insert_runtime_step needs another way in")
    assert list(inspect.signature(runner._build_command).parameters) == [], (
        "cocotb's _build_command takes arguments now: update cosim/sim.py "
        "_insert_runtime_step")
    src = inspect.getsource(type(runner)._build_command)
    assert '"make"' in src, "cocotb's Verilator build no longer ends in make: update " \
        "cosim/sim.py _insert_runtime_step (it inserts a step before the make command)"


def test_torch_dispatch_mode():
    from torch.utils._python_dispatch import TorchDispatchMode
    assert hasattr(TorchDispatchMode, "__torch_dispatch__"), (
        "torch moved TorchDispatchMode's hook: update sw/cost/opcount.py KernelCounter")
