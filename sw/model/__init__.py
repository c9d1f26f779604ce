"""The model: the spatial-attention transformer (:mod:`.transformer`) and its hybrid
layers (:mod:`.hybrid`: LoRA adapters, and autograd functions that route each product
to the unit that runs it: frozen products to ReRAM tiles, trainable and attention
products to the systolic array)."""
