"""benchmarks/step_variants.py: its rewritten convolution gradients are TensorFlow's."""

import helpers
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

  expected = helpers.conv_and_gradients(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), x, w, dy)
  got = helpers.conv_and_gradients(
      lambda x, w: step_variants._conv_custom(x, w, dx_forward, dw_forward), x, w, dy)  # pylint: disable=protected-access
  for a, b in zip(got, expected):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
