"""Amaranth gateware of the HpT accelerator and its Verilog generation."""
