"""input_fns: tf.data over cached record files, and the tutorial's numpy_input_fn."""
