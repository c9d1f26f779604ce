"""Time and energy: the cost model of a run on the GPU and on the manycore
(:mod:`.estimate`, GPU specs in ``gpus.json``), host kernels counted as vector-unit
work (:mod:`.opcount`), and the reports, tables and plots built on it (:mod:`.report`)."""
