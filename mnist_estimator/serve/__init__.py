"""A TensorFlow Serving-compatible REST server for exported models, and a draw-a-digit page."""
