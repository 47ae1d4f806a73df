"""benchmarks/step_variants.py: its rewritten convolution gradients are TensorFlow's."""

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import step_variants


@pytest.mark.parametrize("dx_forward, dw_forward", [(True, None), (True, "conv"),
                                                    (False, "patches"), (False, "chunks3")])
def test_the_rewritten_gradients_equal_conv2ds(dx_forward, dw_forward):
  rng = np.random.RandomState(1)
  x = tf.constant(rng.randn(3, 14, 14, 8).astype(np.float32))
  w = tf.constant(rng.randn(5, 5, 8, 16).astype(np.float32))
  dy = tf.constant(rng.randn(3, 14, 14, 16).astype(np.float32))

  def gradients(conv):
    with tf.GradientTape() as tape:
      tape.watch([x, w])
      y = conv(x, w)
    return y, *tape.gradient(y, [x, w], output_gradients=dy)

  expected = gradients(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"))
  got = gradients(lambda x, w: step_variants._conv_custom(x, w, dx_forward, dw_forward))  # pylint: disable=protected-access
  for a, b in zip(got, expected):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
