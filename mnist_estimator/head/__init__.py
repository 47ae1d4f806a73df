"""The model_fn: a model's logits through the one shared head (loss, metrics, export outputs)."""
