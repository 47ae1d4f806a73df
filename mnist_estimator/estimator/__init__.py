"""tf.estimator around the head: RunConfig, model_dir record, checkpoints, export, hooks."""
