"""folder:DIR read as Keras and torchvision read it: nested files, splits, formats, headers."""

import helpers
import numpy as np
import pytest

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.data import decode


def options(**values):
  return datasets.ImageOptions(**values)


def total(data):
  return len(data.y_train) + len(data.y_test)


def pixels(seed, size=(6, 5), channels=None):
  shape = (*size, channels) if channels else size
  return np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)


def test_images_in_nested_subfolders_count_toward_their_class(tmp_path):
  root = helpers.write_image_folder(tmp_path / "f", per_class=4)
  for i, sub in enumerate(("2019", "2019/march", "2020")):
    helpers.write_picture(tmp_path / "f" / "cat" / sub / f"{i}.png", pixels(i, (12, 10), 3))
  data = helpers.load_whole(f"folder:{root}", options=options(test_split=0.25))
  assert total(data) == 15
  assert np.bincount(np.concatenate([data.y_train, data.y_test])).tolist() == [7, 4, 4]


def test_train_with_test_is_train_and_test(tmp_path):
  helpers.write_image_folder(tmp_path / "f" / "train", per_class=4)
  helpers.write_image_folder(tmp_path / "f" / "test", per_class=2, classes=("cat", "dog"))
  data = helpers.load_whole(f"folder:{tmp_path / 'f'}")
  assert (len(data.y_train), len(data.y_test)) == (12, 4)
  assert "train: train/, test: test/" in data.source and not data.has_validation


@pytest.mark.parametrize("val_name", ["val", "validation"])
def test_val_folder_is_the_validation_set_and_test_is_held_out_of_train(tmp_path, val_name):
  helpers.write_image_folder(tmp_path / "f" / "train", per_class=10)
  helpers.write_image_folder(tmp_path / "f" / val_name, per_class=2, classes=("cat", "dog"))
  data = datasets.load(f"folder:{tmp_path / 'f'}")
  assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (27, 4, 3)
  assert data.validation_source == f"{val_name}/" and f"validation: {val_name}/" in data.source
  assert sorted(set(data.test_files).intersection(
      str(p) for p in (tmp_path / "f" / val_name).rglob("*.png"))) == []
  with pytest.raises(UsageError, match=rf"--validation_split=0.2 does not apply.*own "
                                       rf"validation set \({val_name}/\)"):
    datasets.load(f"folder:{tmp_path / 'f'}", validation_split=0.2)


def test_val_and_validation_together_are_refused(tmp_path):
  for name in ("train", "val", "validation"):
    helpers.write_image_folder(tmp_path / "f" / name, per_class=2)
  with pytest.raises(UsageError, match=r"both val/ and validation/; keep one"):
    datasets.load(f"folder:{tmp_path / 'f'}")


def test_train_alone_holds_out_a_share_of_it(tmp_path):
  helpers.write_image_folder(tmp_path / "f" / "train", per_class=10)
  data = helpers.load_whole(f"folder:{tmp_path / 'f'}")
  assert (len(data.y_train), len(data.y_test)) == (27, 3)
  assert data.class_names == ("cat", "dog", "eel")  # not one class called "train"
  assert "train: train/, test: 10% of each class held out" in data.source


def test_train_test_and_val_are_the_three_sets(tmp_path):
  for name, count in (("train", 4), ("test", 2), ("val", 1)):
    helpers.write_image_folder(tmp_path / "f" / name, per_class=count)
  data = datasets.load(f"folder:{tmp_path / 'f'}")
  assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (12, 3, 6)
  assert "train: train/, test: test/, validation: val/" in data.source
  assert all("/test/" in path for path in data.test_files)


def test_without_val_a_share_of_each_training_class_is_the_validation_set(tmp_path):
  helpers.write_image_folder(tmp_path / "f" / "train", per_class=20)
  helpers.write_image_folder(tmp_path / "f" / "test", per_class=2)
  data = datasets.load(f"folder:{tmp_path / 'f'}", validation_split=0.25, validation_seed=3)
  assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (45, 15, 6)
  assert np.bincount(data.y_val).tolist() == [5, 5, 5]
  again = datasets.load(f"folder:{tmp_path / 'f'}", validation_split=0.25, validation_seed=3)
  np.testing.assert_array_equal(again.x_val, data.x_val)
  other = datasets.load(f"folder:{tmp_path / 'f'}", validation_split=0.25, validation_seed=4)
  assert not np.array_equal(other.x_val, data.x_val)
  default = datasets.load(f"folder:{tmp_path / 'f'}")
  assert (len(default.y_val), default.validation_source) == (
      6, "10% of each training class, seed 0")


def test_folders_that_are_not_splits_beside_train_are_refused(tmp_path):
  helpers.write_image_folder(tmp_path / "f" / "train", per_class=2)
  helpers.write_image_folder(tmp_path / "f" / "extra", per_class=2)
  with pytest.raises(UsageError, match=r"train/ and also extra/"):
    helpers.load_whole(f"folder:{tmp_path / 'f'}")
  (tmp_path / "g").mkdir()
  helpers.write_image_folder(tmp_path / "g" / "test", per_class=2)
  with pytest.raises(UsageError, match=r"test/ with class folders but no train/"):
    helpers.load_whole(f"folder:{tmp_path / 'g'}")


def test_webp_tiff_and_netpbm_files_are_read_as_predict_reads_them(tmp_path):
  root = tmp_path / "f"
  written = {}
  for k, name in enumerate(("a", "b")):
    for i, (suffix, channels) in enumerate(((".webp", 3), (".tif", 3), (".ppm", 3),
                                            (".pgm", None), (".png", 3))):
      path = root / name / f"{i}{suffix}"
      written[str(path)] = pixels(10 * k + i, channels=channels)
      helpers.write_picture(path, written[str(path)], **({"lossless": True}
                                                          if suffix == ".webp" else {}))
  data = helpers.load_whole(f"folder:{root}", options=options(test_split=0.2))
  assert total(data) == 10 and data.image_shape == (6, 5, 3)
  images = np.concatenate([data.x_train, data.x_test])
  for path, original in written.items():
    expected = decode.decode(decode.file_bytes(path), data.decoding).numpy()
    assert any(np.array_equal(expected, x) for x in images), path
    if original.ndim == 3:  # lossless: the file's own pixels
      np.testing.assert_array_equal(expected, original)


def test_hidden_files_and_folders_are_skipped(tmp_path):
  root = helpers.write_image_folder(tmp_path / "f", per_class=4)
  (tmp_path / "f" / "cat" / "._000.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
  (tmp_path / "f" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
  helpers.write_image_folder(tmp_path / "f" / "dog" / ".ipynb_checkpoints", per_class=2)
  data = helpers.load_whole(f"folder:{root}", options=options(test_split=0.25))
  assert total(data) == 12 and data.class_names == ("cat", "dog", "eel")


def test_files_that_are_clearly_not_images_are_ignored_and_counted(tmp_path):
  root = helpers.write_image_folder(tmp_path / "f", per_class=4)
  (tmp_path / "f" / "README.txt").write_text("my cats")
  (tmp_path / "f" / "cat" / "labels.csv").write_text("a,b")
  (tmp_path / "f" / "dog" / "LICENSE").write_text("free")
  data = helpers.load_whole(f"folder:{root}", options=options(test_split=0.25))
  assert total(data) == 12
  assert "3 files that are not images ignored" in data.source, data.source


@pytest.mark.parametrize("name, content, words", [
    ("photo.heic", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 32, ["photo.heic", "HEIF"]),
    ("scan.dat", helpers.PNG_SIGNATURE + b"\x00" * 32, ["scan.dat", "PNG"]),
    ("noname", b"\xff\xd8\xff\xe0" + b"\x00" * 32, ["noname", "JPEG", "rename it"]),
    ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", ["logo.svg", "SVG"]),
])
def test_a_file_that_looks_like_an_image_is_refused_not_skipped(tmp_path, name, content,
                                                                words):
  root = helpers.write_image_folder(tmp_path / "f", per_class=4)
  (tmp_path / "f" / "cat" / name).write_bytes(content)
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"folder:{root}")
  assert all(w in str(error.value) for w in [*words, "--skip_bad_images"]), str(error.value)
  data = helpers.load_whole(f"folder:{root}", options=options(skip_bad_images=True,
                                                         test_split=0.25))
  assert total(data) == 12 and "1 bad files skipped" in data.source


def test_an_image_outside_the_class_folders_is_refused(tmp_path):
  root = helpers.write_image_folder(tmp_path / "f", per_class=2)
  helpers.write_picture(tmp_path / "f" / "cover.png", pixels(0))
  with pytest.raises(UsageError, match=r"cover.png is not in a class folder"):
    helpers.load_whole(f"folder:{root}")


def _gray_folder(root, per_class, size=(4, 4)):
  for k, name in enumerate(("a", "b")):
    for i in range(per_class):
      helpers.write_picture(root / name / f"{i:04d}.png", pixels(1000 * k + i, size))


def test_one_colour_file_anywhere_among_gray_ones_makes_the_set_rgb(tmp_path):
  _gray_folder(tmp_path / "f", 300)
  colour = pixels(7, (4, 4), 3)
  helpers.write_picture(tmp_path / "f" / "a" / "0001.png", colour)  # not among 256 sampled
  data = helpers.load_whole(f"folder:{tmp_path / 'f'}")
  assert data.image_shape == (4, 4, 3)
  images = np.concatenate([data.x_train, data.x_test])
  assert any(np.array_equal(colour, x) for x in images)


def test_the_mixed_sizes_message_counts_every_file(tmp_path):
  _gray_folder(tmp_path / "f", 300)
  for i in (1, 3, 5):  # odd files: not among the 256 sampled
    helpers.write_picture(tmp_path / "f" / "b" / f"{i:04d}.png", pixels(i, (5, 5)))
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"folder:{tmp_path / 'f'}")
  message = str(error.value)
  assert "600 images" in message and "4x4: 597, 5x5: 3" in message, message
  assert "--image_size=4x4" in message
