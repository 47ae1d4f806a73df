"""Your own images: folder:DIR, npz:FILE, tfrecord:GLOBS; sizes, channels, splits, bad data."""

import os

import helpers
import numpy as np
import pytest

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.data import folder


def options(**values):
  return datasets.ImageOptions(**values)


def test_a_folder_is_classes_of_images_split_by_class(tmp_path):
  root = helpers.write_image_folder(tmp_path / "f", per_class=10)
  data = helpers.load_whole(f"folder:{root}")
  assert data.class_names == ("cat", "dog", "eel") and data.n_classes == 3
  assert data.image_shape == (12, 10, 3) and data.x_train.dtype == np.uint8
  assert len(data.y_train) == 27 and len(data.y_test) == 3  # 10% of each class
  assert sorted(np.bincount(data.y_test)) == [1, 1, 1]  # stratified
  k = data.y_train[0]
  assert data.x_train[0][..., k].mean() > data.x_train[0].mean()  # labels follow folders
  again = helpers.load_whole(f"folder:{root}", options=options(test_split=0.2, seed=0))
  assert len(again.y_test) == 6
  # The same seed, the same split; another seed, another split.
  same = helpers.load_whole(f"folder:{root}", options=options(test_split=0.2, seed=0))
  np.testing.assert_array_equal(same.x_test, again.x_test)


def test_train_and_test_subfolders_are_used_as_they_are(tmp_path):
  helpers.write_image_folder(tmp_path / "f" / "train", per_class=4)
  helpers.write_image_folder(tmp_path / "f" / "test", per_class=2, classes=("cat", "dog"))
  data = helpers.load_whole(f"folder:{tmp_path / 'f'}")
  assert (len(data.y_train), len(data.y_test)) == (12, 4)
  assert set(data.y_test) == {0, 1}


def test_gray_images_sizes_and_channels(tmp_path):
  root = helpers.write_image_folder(tmp_path / "g", per_class=4, rgb=False)
  assert helpers.load_whole(f"folder:{root}").image_shape == (12, 10, 1)
  rgb = helpers.load_whole(f"folder:{root}", options=options(channels=3, image_size=(8, 6)))
  assert rgb.image_shape == (8, 6, 3)
  helpers.write_image_folder(tmp_path / "g", per_class=1, size=(20, 20), seed=3)
  with pytest.raises(UsageError, match=r"12x10.*20x20.*--image_size=12x10"):
    helpers.load_whole(f"folder:{root}")


def test_the_decoded_set_is_cached_and_rebuilt_when_a_file_changes(tmp_path, monkeypatch):
  root = helpers.write_image_folder(tmp_path / "f", per_class=3)
  helpers.load_whole(f"folder:{root}", options=options(test_split=0.34))
  calls = []
  real = folder.decode_files
  monkeypatch.setattr(folder, "decode_files", lambda *a, **k: calls.append(1) or real(*a, **k))
  helpers.load_whole(f"folder:{root}", options=options(test_split=0.34))
  assert not calls  # from the cache
  helpers.write_image_folder(tmp_path / "f", per_class=3, seed=9)  # same names, new content
  os.utime(os.path.join(root, "cat", "000.png"), ns=(1, 1))
  helpers.load_whole(f"folder:{root}", options=options(test_split=0.34))
  assert calls == [1]


@pytest.mark.parametrize("make, words", [
    (lambda d: d.mkdir(), ["holds no class subfolders"]),
    (lambda d: (d / "cat").mkdir(parents=True), ["holds no PNG"]),
    (lambda d: helpers.write_image_folder(d, classes=("cat",), per_class=4), ["one class only"]),
    (lambda d: (helpers.write_image_folder(d, per_class=4),
                (d / "dog" / "bad.png").write_bytes(b"no image")),
     ["bad.png", "--skip_bad_images"]),
])
def test_bad_folders_are_one_line(tmp_path, make, words):
  root = tmp_path / "f"
  make(root)
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"folder:{root}")
  assert all(word in str(error.value) for word in words), str(error.value)


def test_bad_images_can_be_skipped_and_counted(tmp_path):
  root = helpers.write_image_folder(tmp_path / "f", per_class=4)
  (tmp_path / "f" / "dog" / "bad.png").write_bytes(b"no image")
  data = helpers.load_whole(f"folder:{root}", options=options(skip_bad_images=True))
  assert len(data.y_train) + len(data.y_test) == 12 and "1 bad files skipped" in data.source


def test_a_test_class_without_training_images_is_refused(tmp_path):
  helpers.write_image_folder(tmp_path / "f" / "train", per_class=3, classes=("cat", "dog"))
  helpers.write_image_folder(tmp_path / "f" / "test", per_class=2)
  with pytest.raises(UsageError, match="class eel, which the training folder lacks"):
    helpers.load_whole(f"folder:{tmp_path / 'f'}")


def test_npz_of_your_own(tmp_path, small):
  path = tmp_path / "mine.npz"
  np.savez(path, x_train=small.x_train[:50, ..., 0], y_train=small.y_train[:50],
           x_test=small.x_test[:20].astype(np.float32) / 255, y_test=small.y_test[:20])
  mixed = helpers.load_whole(f"npz:{path}")  # NHW uint8 and NHWC float 0..1: both floats
  assert mixed.x_train.dtype == mixed.x_test.dtype == np.float32
  np.testing.assert_allclose(mixed.x_train, small.x_train[:50] / 255, atol=1e-6)
  np.savez(path, x_train=small.x_train[:50], y_train=small.y_train[:50],
           x_test=small.x_test[:20], y_test=small.y_test[:20])
  data = helpers.load_whole(f"npz:{path}")
  assert data.image_shape == (28, 28, 1) and data.n_classes == 10
  np.savez(path, x_train=small.x_train[:50], y_train=-small.y_train[:50] - 1,
           x_test=small.x_test[:20], y_test=small.y_test[:20])
  with pytest.raises(UsageError, match="negative label"):
    helpers.load_whole(f"npz:{path}")


def test_tfrecord_of_your_own(tmp_path, small):
  rgb = np.repeat(small.x_train[:30], 3, axis=-1)
  train = helpers.write_tfrecord(tmp_path / "train.tfrecord", rgb, small.y_train[:30] % 3)
  test = helpers.write_tfrecord(tmp_path / "test.tfrecord", rgb[:9], small.y_train[:9] % 3)
  data = helpers.load_whole(f"tfrecord:{train},{test}")
  assert data.image_shape == (28, 28, 3) and (len(data.y_train), len(data.y_test)) == (30, 9)
  np.testing.assert_array_equal(data.x_train, rgb)  # PNG round trip
  with pytest.raises(UsageError, match="no file matches"):
    helpers.load_whole(f"tfrecord:{tmp_path}/none-*.tfrecord")


def test_options_of_your_own_images_are_refused_for_built_in_sets():
  with pytest.raises(UsageError, match="--channels apply to your own images"):
    helpers.load_whole("mnist_sample", options=options(channels=3))
  with pytest.raises(UsageError, match="drop --data_dir"):
    helpers.load_whole("folder:/x", "/data")
