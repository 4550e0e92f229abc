"""Plan: the run config, the head/loss contract, the model reference, the search space and preflight."""
