"""The data sets' loaders and registry on small generated IDX and npz files (no network)."""
# pylint: disable=protected-access

import gzip
import os
import subprocess
import sys

import helpers
import numpy as np
import pytest
from helpers import ROOT, fake_mnist, idx_bytes, write_idx, write_mnist_dir  # pylint: disable=g-bad-import-order

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import checksums, datasets, mnist, readers

_SHARED_MNIST = os.path.join(ROOT, "..", "shared", "data", "mnist")
_SHARED_FASHION = os.path.join(ROOT, "..", "shared", "data", "fashion_mnist")
_IDX = readers.IDX_FILES


load = helpers.load_whole  # the loaders' own arrays: no validation cut


def assert_usage_error(fn, *fragments):
  with pytest.raises(UsageError) as info:
    fn()
  message = str(info.value)
  assert "\n" not in message
  for fragment in fragments:
    assert str(fragment) in message, message
  return message


def assert_matches(ds, arrays, hw=(28, 28)):
  for got, want in zip((ds.x_train, ds.y_train, ds.x_test, ds.y_test), arrays):
    np.testing.assert_array_equal(got.reshape(want.shape), want)
  assert ds.x_train.dtype == ds.x_test.dtype == np.uint8
  assert ds.y_train.dtype == ds.y_test.dtype == np.int32
  assert ds.x_train.shape[1:] == ds.x_test.shape[1:] == hw + (1,) == ds.image_shape
  assert ds.x_train.flags["C_CONTIGUOUS"] and ds.x_test.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
  images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  labels = np.array([9, 0, 255], np.uint8)
  got = readers.read_idx(write_idx(tmp_path / "i", images, gz=gz))
  assert got.dtype == np.uint8 and got.shape == (2, 3, 4) and got.flags["WRITEABLE"]
  np.testing.assert_array_equal(got, images)
  np.testing.assert_array_equal(readers.read_idx(write_idx(tmp_path / "l", labels, gz=gz)), labels)


def test_read_idx_gzip_detected_by_suffix_or_magic(tmp_path):
  labels = np.array([1, 2, 3], np.uint8)
  # gzip data without a .gz name is recognised by its magic bytes 1f 8b.
  np.testing.assert_array_equal(readers.read_idx(write_idx(tmp_path / "raw_name", labels)), labels)
  np.testing.assert_array_equal(readers.read_idx(write_idx(tmp_path / "x.gz", labels)), labels)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_idx_dir(tmp_path, gz):
  arrays = write_mnist_dir(tmp_path, gz=gz)
  ds = load("mnist", str(tmp_path))
  assert_matches(ds, arrays)
  assert ds.name == "mnist" and ds.n_classes == 10
  assert ds.source == f"IDX files in {tmp_path}"


def test_mixed_gz_and_raw_files(tmp_path):
  arrays = write_mnist_dir(tmp_path, gz=True, skip=_IDX[1:2])
  write_idx(tmp_path / _IDX[1], arrays[1], gz=False)
  assert_matches(load("fashion_mnist", str(tmp_path)), arrays)


@pytest.mark.parametrize("filename,name", [("mnist.npz", "mnist"), ("whatever.npz", "mnist"),
                                           ("fashion-mnist.npz", "fashion_mnist")])
def test_npz_dir(tmp_path, filename, name):
  arrays = fake_mnist()
  np.savez(tmp_path / filename, **dict(zip(readers.NPZ_KEYS, arrays)))
  ds = load(name, str(tmp_path))
  assert_matches(ds, arrays)
  assert ds.name == name and filename in ds.source


def test_read_idx_wrong_magic(tmp_path):
  path = write_idx(tmp_path / "x.gz", np.zeros(4, np.uint8), magic=0x00000D01)
  assert_usage_error(lambda: readers.read_idx(path), path, "not an IDX file", "0x00000d01",
                     "0x00000801")


def test_read_idx_too_short_for_magic(tmp_path):
  (tmp_path / "x").write_bytes(b"\x00\x00")
  assert_usage_error(lambda: readers.read_idx(str(tmp_path / "x")), "not an IDX file")


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_truncated(tmp_path, gz):
  data = idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-100]
  path = tmp_path / ("x.gz" if gz else "x")
  path.write_bytes(gzip.compress(data) if gz else data)
  assert_usage_error(lambda: readers.read_idx(str(path)), path, "truncated",
                     "3 images of 28x28", f"{3 * 784 - 100} bytes")


def test_read_idx_truncated_header(tmp_path):
  (tmp_path / "x").write_bytes(idx_bytes(np.zeros((3, 4, 4), np.uint8))[:9])
  assert_usage_error(lambda: readers.read_idx(str(tmp_path / "x")), "truncated", "header")


def test_read_idx_trailing_bytes(tmp_path):
  (tmp_path / "x").write_bytes(idx_bytes(np.zeros(5, np.uint8)) + b"junk")
  assert_usage_error(lambda: readers.read_idx(str(tmp_path / "x")), "4 bytes after", "5 labels")


@pytest.mark.parametrize("damage", ["crc", "cut", "not_gzip"])
def test_read_idx_corrupt_gzip(tmp_path, damage):
  data = bytearray(gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8))))
  if damage == "crc":
    data[-8] ^= 0xFF  # the CRC32 sits in the 8-byte trailer
  elif damage == "cut":
    data = data[:len(data) // 2]
  else:
    data = idx_bytes(np.zeros(3, np.uint8))  # raw IDX bytes under a .gz name
  path = tmp_path / "train-labels-idx1-ubyte.gz"
  path.write_bytes(bytes(data))
  assert_usage_error(lambda: readers.read_idx(str(path)), path, "not a valid gzip file")


def test_read_idx_missing_file(tmp_path):
  assert_usage_error(lambda: readers.read_idx(str(tmp_path / "nope")), "nope", "Cannot read")


def test_label_out_of_range(tmp_path):
  arrays = list(fake_mnist())
  arrays[3][2] = 10
  write_mnist_dir(tmp_path, arrays)
  assert_usage_error(lambda: load("mnist", str(tmp_path)), "t10k-labels-idx1-ubyte.gz",
                     "label 10 at index 2", "[0, 10)")


def test_count_mismatch(tmp_path):
  arrays = list(fake_mnist())
  arrays[1] = arrays[1][:-1]
  write_mnist_dir(tmp_path, arrays)
  assert_usage_error(lambda: load("mnist", str(tmp_path)), "train-images-idx3-ubyte.gz",
                     "12 images", "11 labels")


def test_wrong_image_size(tmp_path):
  arrays = list(fake_mnist())
  arrays[0] = np.zeros((12, 32, 32), np.uint8)
  write_mnist_dir(tmp_path, arrays)
  assert_usage_error(lambda: load("mnist", str(tmp_path)), "32x32", "28x28")


def test_swapped_images_and_labels(tmp_path):
  arrays = list(fake_mnist())
  arrays[0], arrays[1] = arrays[1], arrays[0]
  write_mnist_dir(tmp_path, arrays)
  assert_usage_error(lambda: load("mnist", str(tmp_path)), "train-images-idx3-ubyte.gz",
                     "swapped")


def test_missing_one_idx_file(tmp_path):
  write_mnist_dir(tmp_path, skip=("t10k-labels-idx1-ubyte",))
  message = assert_usage_error(lambda: load("mnist", str(tmp_path)), tmp_path,
                               "only some", "missing t10k-labels-idx1-ubyte[.gz]")
  assert "train-labels" not in message


def test_nonexistent_data_dir(tmp_path):
  missing = str(tmp_path / "no_such_dir")
  assert_usage_error(lambda: load("mnist", missing), missing, "does not exist",
                     "train-images-idx3-ubyte[.gz]", "mnist.npz")


def test_data_dir_without_data(tmp_path):
  (tmp_path / "readme.txt").write_text("hi")
  assert_usage_error(lambda: load("fashion_mnist", str(tmp_path)), "holds no",
                     "fashion-mnist.npz", "t10k-images-idx3-ubyte[.gz]")


def test_several_npz_files(tmp_path):
  for name in ("a.npz", "b.npz"):
    np.savez(tmp_path / name, x=np.zeros(1))
  assert_usage_error(lambda: load("mnist", str(tmp_path)), "several", "a.npz", "b.npz")


def test_npz_missing_keys(tmp_path):
  arrays = fake_mnist()
  np.savez(tmp_path / "mnist.npz", x_train=arrays[0], y_train=arrays[1])
  assert_usage_error(lambda: load("mnist", str(tmp_path)), "mnist.npz",
                     "x_test, y_test", "it has: x_train, y_train")


def test_npz_wrong_dims_and_labels(tmp_path):
  x_train, y_train, x_test, y_test = fake_mnist()
  path = tmp_path / "mnist.npz"
  np.savez(path, x_train=x_train.reshape(12, -1), y_train=y_train, x_test=x_test, y_test=y_test)
  assert_usage_error(lambda: load("mnist", str(tmp_path)), "[x_train]", "(12, 784)")
  np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=-np.ones(5, np.int64))
  assert_usage_error(lambda: load("mnist", str(tmp_path)), "[y_test]", "label -1")
  np.savez(path, x_train=x_train, y_train=y_train[:3], x_test=x_test, y_test=y_test)
  assert_usage_error(lambda: load("mnist", str(tmp_path)), "12 images", "3 labels")


@pytest.mark.parametrize("content", [b"this is not a zip file", b"PK\x03\x04broken zip"])
def test_npz_not_a_zip(tmp_path, content):
  (tmp_path / "mnist.npz").write_bytes(content)
  assert_usage_error(lambda: load("mnist", str(tmp_path)), "mnist.npz",
                     "not a readable .npz")


def test_unknown_name_lists_allowed_names():
  assert datasets.dataset_names() == ["fashion_mnist", "fonts", "mnist", "mnist_sample",
                                      "weather"]
  assert_usage_error(lambda: load("cifar10"), "'cifar10'",
                     "fashion_mnist, fonts, mnist, mnist_sample, weather")


def _raise_offline():
  raise OSError("URL fetch failure: no network")


def test_mnist_falls_back_to_sample_with_warning(monkeypatch):
  monkeypatch.setitem(mnist._KERAS_LOADERS, "mnist", _raise_offline)
  warnings = []
  monkeypatch.setattr(mnist.logging, "warning", lambda msg, *args: warnings.append(msg % args))
  ds = load("mnist")
  assert ds.name == "mnist" and len(ds.y_train) == 5000 and len(ds.y_test) == 1000
  assert ds.source.startswith("bundled sample")
  assert len(warnings) == 1
  for fragment in ("SMALL SAMPLE", "URL fetch failure", "--data_dir=DIR", "connect once"):
    assert fragment in warnings[0], warnings[0]


def _as_published(monkeypatch, name, arrays):
  """Makes `arrays` the published files of `name` (fake data standing in for the real set)."""
  digests = {base: checksums.idx_sha256(a) for base, a in zip(_IDX, arrays)}
  monkeypatch.setitem(checksums.PUBLISHED, name, digests)


def test_mnist_uses_keras_when_it_works(monkeypatch):
  x_train, y_train, x_test, y_test = fake_mnist()
  monkeypatch.setitem(mnist._KERAS_LOADERS, "mnist",
                      lambda: ((x_train, y_train), (x_test, y_test)))
  _as_published(monkeypatch, "mnist", (x_train, y_train, x_test, y_test))
  ds = load("mnist", data_dir="")
  assert_matches(ds, (x_train, y_train, x_test, y_test))
  assert "tf.keras" in ds.source


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_a_wrong_keras_cache_is_named_not_used(name, monkeypatch):
  x_train, y_train, x_test, y_test = fake_mnist()
  monkeypatch.setitem(mnist._KERAS_LOADERS, name,
                      lambda: ((x_train, y_train), (x_test, y_test)))
  assert_usage_error(lambda: load(name), "~/.keras/datasets", "SHA-256",
                     "train-images-idx3-ubyte", "delete the cached files")


def test_own_idx_files_under_the_standard_names_are_announced(tmp_path, monkeypatch):
  arrays = write_mnist_dir(tmp_path)
  warnings = []
  monkeypatch.setattr(mnist.logging, "warning", lambda msg, *args: warnings.append(msg % args))
  load("mnist", str(tmp_path))
  assert len(warnings) == 4 and "is not the published mnist file (SHA-256" in warnings[0]
  _as_published(monkeypatch, "mnist", arrays)
  warnings.clear()
  load("mnist", str(tmp_path))
  assert not warnings


def test_debian_fashion_mnist_is_read_and_checked(tmp_path, monkeypatch):
  arrays = write_mnist_dir(tmp_path)
  monkeypatch.setattr(mnist, "DEBIAN_FASHION_MNIST", str(tmp_path))
  monkeypatch.setitem(mnist._KERAS_LOADERS, "fashion_mnist", _raise_offline)
  assert_usage_error(lambda: load("fashion_mnist"), str(tmp_path), "not the published")
  _as_published(monkeypatch, "fashion_mnist", arrays)
  assert_matches(load("fashion_mnist"), arrays)


def test_fashion_mnist_offline_is_a_usage_error(monkeypatch):
  monkeypatch.setitem(mnist._KERAS_LOADERS, "fashion_mnist", _raise_offline)
  assert_usage_error(lambda: load("fashion_mnist"), "Fashion-MNIST", "URL fetch failure",
                     "--data_dir")


def test_mnist_sample():
  ds = load("mnist_sample", data_dir="/ignored")
  assert (len(ds.y_train), len(ds.y_test)) == (5000, 1000)
  assert ds.x_train.shape == (5000, 28, 28, 1) and ds.x_test.shape == (1000, 28, 28, 1)
  assert ds.image_shape == (28, 28, 1) and ds.n_classes == 10
  assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int32
  assert 0 <= ds.y_train.min() and ds.y_train.max() < 10 and ds.y_test.max() < 10
  assert set(np.unique(ds.y_train)) == set(range(10))
  np.testing.assert_array_equal(ds.y_train[:5], [5, 0, 4, 1, 9])  # MNIST's first training labels
  assert ds.source == "bundled sample (5000 train / 1000 test)"


def write_fonts(folder, n=50, labels=None):
  rng = np.random.RandomState(7)
  images = rng.randint(0, 256, (n, 36, 36)).astype(np.uint8)
  labels = (np.arange(n) % 5).astype(np.uint8) if labels is None else labels
  np.savez(folder / "data_with_labels.npz", images, labels)  # stored as arr_0, arr_1
  return images, labels


def test_fonts_split(tmp_path):
  images, labels = write_fonts(tmp_path)
  state = np.random.get_state()
  ds = load("fonts", str(tmp_path))
  assert np.all(np.random.get_state()[1] == state[1])  # the global RNG is untouched
  np.random.seed(0)  # what the book does
  perm = np.random.permutation(50)
  np.random.set_state(state)
  assert_matches(ds, (images[perm[5:]], labels[perm[5:]], images[perm[:5]], labels[perm[:5]]),
                 hw=(36, 36))
  assert (len(ds.y_train), len(ds.y_test)) == (45, 5)
  assert ds.name == "fonts" and ds.n_classes == 5
  again = load("fonts", str(tmp_path))
  np.testing.assert_array_equal(again.y_test, ds.y_test)
  other = load("fonts", str(tmp_path), seed=1)
  assert not np.array_equal(other.x_test, ds.x_test)


def test_fonts_needs_data_dir(tmp_path):
  assert_usage_error(lambda: load("fonts"), "data_with_labels.npz", "--data_dir")
  assert_usage_error(lambda: load("fonts", str(tmp_path)),
                     os.path.join(str(tmp_path), "data_with_labels.npz"), "does not exist",
                     "--data_dir")


def test_fonts_label_out_of_range(tmp_path):
  write_fonts(tmp_path, labels=np.full(50, 5, np.uint8))
  assert_usage_error(lambda: load("fonts", str(tmp_path)), "[arr_1]", "label 5",
                     "[0, 5)")


def test_import_does_not_load_tensorflow():
  code = ("import sys, mnist_estimator.data.datasets; "
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
  subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=helpers.cli_env(), check=True,
                 timeout=60)


@pytest.mark.skipif(not os.path.isdir(_SHARED_MNIST), reason="full MNIST not on this machine")
def test_full_mnist_from_shared_dir():
  ds = load("mnist", _SHARED_MNIST)
  arrays = (ds.x_train[..., 0], ds.y_train, ds.x_test[..., 0], ds.y_test)
  assert not checksums.mismatches("mnist", dict(zip(_IDX, arrays)))  # the published digests
  assert (len(ds.y_train), len(ds.y_test)) == (60000, 10000)
  np.testing.assert_array_equal(ds.y_train[:5], [5, 0, 4, 1, 9])
  assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_train.dtype == np.uint8


def test_read_idx_huge_header_dims(tmp_path):
  header = (0x803).to_bytes(4, "big") + np.array([2**32 - 1] * 3, ">u4").tobytes()
  (tmp_path / "x").write_bytes(header + b"\x00" * 10)
  assert_usage_error(lambda: readers.read_idx(str(tmp_path / "x")), "truncated", "10 bytes")


@pytest.mark.skipif(not os.path.isdir(_SHARED_FASHION), reason="Fashion-MNIST not here")
def test_full_fashion_mnist_matches_the_published_digests():
  ds = load("fashion_mnist", _SHARED_FASHION)
  arrays = (ds.x_train[..., 0], ds.y_train, ds.x_test[..., 0], ds.y_test)
  assert not checksums.mismatches("fashion_mnist", dict(zip(_IDX, arrays)))
