"""--image_size, --channels, --test_split, --skip_bad_images: applied, or refused."""

import helpers
import numpy as np
import pytest

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.data import decode


def options(**values):
  return datasets.ImageOptions(**values)


def _npz(path, x_train, x_test):
  np.savez(path, x_train=x_train, y_train=np.arange(len(x_train)) % 2, x_test=x_test,
           y_test=np.arange(len(x_test)) % 2)
  return f"npz:{path}"


def _one(image, decoding):
  """What a decoded file of these pixels becomes: decode.py's per-image steps."""
  # pylint: disable=protected-access
  return decode._size(decode._channels(image, decoding.channels), decoding).numpy()


def test_image_size_and_channels_apply_to_npz_as_to_decoded_files(tmp_path):
  rng = np.random.RandomState(0)
  x = rng.randint(0, 256, (10, 16, 12, 3)).astype(np.uint8)
  name = _npz(tmp_path / "rgb.npz", x[:6], x[6:])
  data = helpers.load_whole(name, options=options(image_size=(8, 6), channels=1))
  assert data.image_shape == (8, 6, 1) and data.x_train.dtype == np.uint8
  decoding = decode.Decoding(8, 6, 1)
  np.testing.assert_array_equal(data.x_train, np.stack([_one(i, decoding) for i in x[:6]]))
  np.testing.assert_array_equal(data.x_test, np.stack([_one(i, decoding) for i in x[6:]]))
  assert "resized from 16x12 (bilinear, antialiased), as gray" in data.source
  rgb = helpers.load_whole(_npz(tmp_path / "gray.npz", x[:6, ..., 0], x[6:, ..., 0]),
                      options=options(channels=3))
  assert rgb.image_shape == (16, 12, 3) and "as RGB" in rgb.source
  np.testing.assert_array_equal(rgb.x_train, np.repeat(x[:6, ..., :1], 3, axis=-1))
  same = helpers.load_whole(name, options=options(image_size=(16, 12), channels=3))
  np.testing.assert_array_equal(same.x_train, x[:6])  # nothing to do: nothing done
  assert "resized" not in same.source


def test_float_npz_images_are_resized_without_rounding(tmp_path):
  x = np.random.RandomState(1).randint(0, 256, (8, 16, 12, 3)).astype(np.uint8)
  data = helpers.load_whole(_npz(tmp_path / "f.npz", x[:4] / np.float32(255), x[4:] / 255.0),
                       options=options(image_size=(8, 6), channels=1))
  assert data.x_train.dtype == np.float32 and data.image_shape == (8, 6, 1)
  assert 0 <= data.x_train.min() and data.x_train.max() <= 1
  as_uint8 = np.stack([_one(i, decode.Decoding(8, 6, 1)) for i in x[:4]]) / 255
  np.testing.assert_allclose(data.x_train, as_uint8, atol=1.01 / 255)


def test_options_that_do_not_apply_to_npz_are_refused(tmp_path):
  name = _npz(tmp_path / "a.npz", np.zeros((4, 8, 8), np.uint8), np.zeros((2, 8, 8), np.uint8))
  with pytest.raises(UsageError, match=r"--test_split=0.2 does not apply.*x_test"):
    helpers.load_whole(name, options=options(test_split=0.2))
  with pytest.raises(UsageError, match=r"--skip_bad_images applies to image files"):
    helpers.load_whole(name, options=options(skip_bad_images=True))


def test_test_split_is_refused_where_the_data_has_a_test_set(tmp_path):
  with pytest.raises(UsageError, match=r"--test_split applies .* mnist_sample has its "
                                       r"own test set: drop --test_split"):
    helpers.load_whole("mnist_sample", options=options(test_split=0.1))
  helpers.write_image_folder(tmp_path / "f" / "train", per_class=2)
  helpers.write_image_folder(tmp_path / "f" / "test", per_class=1)
  with pytest.raises(UsageError, match=r"--test_split=0.1 does not apply.*test"):
    helpers.load_whole(f"folder:{tmp_path / 'f'}", options=options(test_split=0.1))
  flat = helpers.write_image_folder(tmp_path / "g", per_class=4)
  assert len(helpers.load_whole(f"folder:{flat}", options=options(test_split=0.5))
             .y_test) == 6
