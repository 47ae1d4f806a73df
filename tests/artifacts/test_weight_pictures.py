"""Weights as pictures: conv filter grids, per-class pixel maps, choosing variables by name."""

import os

import matplotlib

matplotlib.use("Agg")
import helpers
import matplotlib.image  # pylint: disable=g-import-not-at-top
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import pytest

from mnist_estimator.artifacts import weight_pictures
from mnist_estimator.common.errors import UsageError


def test_conv_filters_png(tmp_path):
  kernel = np.random.RandomState(0).randn(5, 5, 1, 32)
  path = str(tmp_path / "sub" / "conv1.png")
  assert weight_pictures.conv_filters_png(kernel, path, title="conv1") == path
  helpers.read_png(path)
  assert not plt.get_fignums()  # the figure was closed


def test_conv_filters_png_64_filters_of_many_channels_and_constant_filters(tmp_path):
  kernel = np.random.RandomState(0).randn(5, 5, 32, 64)
  kernel[..., 3] = 0.0  # a dead filter must not divide by zero
  helpers.read_png(weight_pictures.conv_filters_png(kernel, str(tmp_path / "conv2.png")))


def test_conv_filters_png_rejects_a_dense_kernel(tmp_path):
  with pytest.raises(UsageError, match=r"4-D .*\[784, 10\]"):
    weight_pictures.conv_filters_png(np.zeros((784, 10)), str(tmp_path / "x.png"))


@pytest.mark.parametrize("shape, image_shape, names", [
    ((784, 10), (28, 28, 1), None),
    ((784, 10), (28, 28), None),
    ((1296, 5), (36, 36, 1), list("ABCDE")),  # the fonts set
])
def test_class_maps_png(tmp_path, shape, image_shape, names):
  kernel = np.random.RandomState(0).randn(*shape)
  path = str(tmp_path / "logits.png")
  assert weight_pictures.class_maps_png(kernel, image_shape, path, class_names=names) == path
  helpers.read_png(path)
  assert not plt.get_fignums()


def test_class_maps_png_wrong_size_names_both_shapes(tmp_path):
  with pytest.raises(UsageError, match=r"\[784, 10\].*\[36, 36, 1\]"):
    weight_pictures.class_maps_png(np.zeros((784, 10)), (36, 36, 1), str(tmp_path / "x.png"))
  with pytest.raises(UsageError, match="3 class names .* 10 classes"):
    weight_pictures.class_maps_png(np.zeros((784, 10)), (28, 28, 1), str(tmp_path / "x.png"),
                            class_names=["a", "b", "c"])


def _reddish_and_bluish_columns(pixels):
  """Image columns holding strongly red pixels but no blue ones, and the reverse.

  The colorbar holds both colours in the same columns, so it falls in neither set.
  """
  red, blue = pixels[..., 0] - pixels[..., 2] > 0.2, pixels[..., 2] - pixels[..., 0] > 0.2
  has_red, has_blue = red.any(axis=0), blue.any(axis=0)
  return np.flatnonzero(has_red & ~has_blue), np.flatnonzero(has_blue & ~has_red)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_class_map_shows_the_weights_where_they_are(tmp_path, sign):
  # Class 3: +1 (red) on the left half of the image, -1 (blue) on the right; other classes 0.
  column = np.zeros((28, 28, 1))
  column[:, :14], column[:, 14:] = sign, -sign
  kernel = np.zeros((784, 10))
  kernel[:, 3] = column.reshape(-1)
  path = weight_pictures.class_maps_png(kernel, (28, 28, 1), str(tmp_path / "m.png"))
  pixels = helpers.read_png(path)
  red_only, blue_only = _reddish_and_bluish_columns(pixels)
  assert len(red_only) > 20 and len(blue_only) > 20
  if sign > 0:
    assert red_only.max() < blue_only.min()  # red left of blue
  else:
    assert blue_only.max() < red_only.min()


def test_draw_draws_kernels_and_skips_the_rest(tmp_path):
  rng = np.random.RandomState(0)
  arrays = {
      "conv1/kernel": rng.randn(5, 5, 1, 32),
      "conv1/bias": rng.randn(32),
      "dense/kernel": rng.randn(3136, 16),  # a deeper dense layer: not pixels to outputs
      "logits/kernel": rng.randn(784, 10),
      "logits/bias": rng.randn(10),
  }
  paths = weight_pictures.draw(arrays, (28, 28, 1), str(tmp_path / "pics"))
  assert paths == [str(tmp_path / "pics" / "conv1__kernel.png"),
                   str(tmp_path / "pics" / "logits__kernel.png")]
  for path in paths:
    helpers.read_png(path)
  assert sorted(os.listdir(tmp_path / "pics")) == ["conv1__kernel.png", "logits__kernel.png"]
  only = weight_pictures.draw(arrays, (28, 28, 1), str(tmp_path / "conv"), pattern="^conv")
  assert only == [str(tmp_path / "conv" / "conv1__kernel.png")]


def test_draw_errors(tmp_path):
  arrays = {"conv1/kernel": np.zeros((5, 5, 1, 4)), "logits/kernel": np.zeros((784, 10)),
            "logits/bias": np.zeros(10)}
  with pytest.raises(UsageError, match=r"not a regular expression"):
    weight_pictures.draw(arrays, (28, 28, 1), str(tmp_path), pattern="conv(")
  with pytest.raises(UsageError, match=r"'bias'.*conv1/kernel, logits/kernel"):
    weight_pictures.draw(arrays, (28, 28, 1), str(tmp_path), pattern="bias")
  with pytest.raises(UsageError, match=r"none of the variables logits/bias can be drawn"):
    weight_pictures.draw({"logits/bias": np.zeros(10)}, (28, 28, 1), str(tmp_path))
  assert not os.listdir(tmp_path)  # nothing written on error


def test_a_hidden_layer_is_not_called_classes():
  assert "each class" in weight_pictures._class_caption((28, 28, 1), 10, 10)  # pylint: disable=protected-access
  caption = weight_pictures._class_caption((28, 28, 1), 500, 10)  # pylint: disable=protected-access
  assert "of the 500 hidden units" in caption and "class" not in caption


def test_rgb_filters_and_maps_are_drawn_in_colour(tmp_path):
  rng = np.random.RandomState(0)
  for path in (weight_pictures.conv_filters_png(rng.randn(3, 3, 3, 8), str(tmp_path / "c.png")),
               weight_pictures.class_maps_png(rng.randn(12 * 10 * 3, 3), (12, 10, 3),
                                              str(tmp_path / "m.png"))):
    pixels = helpers.read_png(path)
    spread = pixels.max(axis=-1) - pixels.min(axis=-1)  # 0 wherever a pixel is gray
    assert (spread > 0.2).mean() > 0.05, path
