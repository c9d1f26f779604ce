"""PyTorch/numpy host of the HpT co-design harness.

Sub-packages, from the data to the answer:

- :mod:`sw.data`: the four science apps (seeded synthetic or loaded from CSV/NPZ),
  chronological splits.
- :mod:`sw.model`: the spatial-attention transformer and its hybrid (LoRA, routed) layers.
- :mod:`sw.device`: backends and the integer devices the routed products run on.
- :mod:`sw.golden`: the bit-exact numpy models of the systolic core and the ReRAM tile.
- :mod:`sw.train`: the training loop, switch policies and run folders.
- :mod:`sw.cost`: time and energy of a run on the GPU and on the manycore; reports.
- :mod:`sw.experiments`: grids of runs on Ray: sweeps, quality, realism.

Nothing here imports :mod:`cosim`; the command line (:mod:`hpt`) sits above both.
"""
