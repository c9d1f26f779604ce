"""PyTorch/numpy host of the HpT co-design harness."""
