"""The two uses of dependencies' private interfaces, each isolated in one place, pinned
here so that an upgrade that moves them fails loudly and names the place to fix:

* ``torch.utils._python_dispatch.TorchDispatchMode`` (sw/cost/opcount.py: counting the kernels
  of a training step; torch has no public dispatch-mode class);
* Verilator's generated ``Vtop__Syms::_traceDumpClose`` (cosim/waves.cpp: closing an FST
  window from the harness; checked where a traced model is built, tests/cosim/test_waves.py).

Verilator's runtime objects are shared between builds through verilated.mk's public
``OBJCACHE`` hook (cosim/objcache.py, tests/unit/test_objcache.py), no longer by patching
cocotb's runner.
"""


def test_torch_dispatch_mode():
    from torch.utils._python_dispatch import TorchDispatchMode
    assert hasattr(TorchDispatchMode, "__torch_dispatch__"), (
        "torch moved TorchDispatchMode's hook: update sw/cost/opcount.py KernelCounter")
