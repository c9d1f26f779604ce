"""The ``hpt`` command: the top layer, over hw/ (gateware), sw/ (the PyTorch host, cost
model, sweeps) and cosim/ (cocotb + Verilator). Nothing below imports it."""
