"""Outputs: the model directory (every file name defined once) and the model card."""
