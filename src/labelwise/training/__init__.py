"""Training: the Transformers trainer, heads, losses, batching, forward passes and predict."""
