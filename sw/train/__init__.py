"""Training: the run configuration and the training loop (:mod:`.trainer`), the switch
policies from full-parameter to LoRA training (:mod:`.policy`), and the run folder's
checkpoints, results and plots (:mod:`.runfolder`)."""
