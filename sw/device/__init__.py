"""The devices the model's integer products run on: the backends and the abstract
:class:`~sw.device.backends.IntDevice` (:mod:`.backends`), the functional models of
the ReRAM tiles and systolic cores behind them, the packing of matrices into tiles
(:mod:`.packing`), and the fidelity model of a tile's analog error (:mod:`.fidelity`).
The RTL device (``cosim.rtl_device``) implements the same interface."""
