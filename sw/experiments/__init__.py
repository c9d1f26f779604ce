"""Grids of runs: the engine that executes them on Ray or serially (:mod:`.engine`),
design-space sweeps (:mod:`.sweep`, :mod:`.sweep_bench`), the quality protocol with its
forecasting baselines (:mod:`.quality`, :mod:`.baselines`) and device realism
(:mod:`.realism`)."""
