"""Bit-exact numpy models of the hardware blocks; the one reference for RTL and host."""
