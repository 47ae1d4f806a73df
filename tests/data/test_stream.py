"""Images streamed from their files: FileImages, the input_fn, the shard cache, the choice."""

import os
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import decode
from mnist_estimator.data import stream
from mnist_estimator.data import stream_cache
from mnist_estimator.data import stream_input

DECODING = decode.Decoding(12, 16, 3, resized=True)
FORMATS = ("png", "jpg", "webp", "bmp", "gif")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  """(paths, labels): 15 images of 3 classes in five formats and two sizes, some gray."""
  root = tmp_path_factory.mktemp("stream_images")
  rng = np.random.default_rng(0)
  paths, labels = [], []
  for i in range(15):
    size = (20, 30) if i % 2 else (12, 16)
    pixels = rng.integers(0, 256, (*size, 3), np.uint8)
    image = Image.fromarray(pixels).convert("L") if i % 4 == 3 else Image.fromarray(pixels)
    path = str(root / f"{i:02d}.{FORMATS[i % len(FORMATS)]}")
    image.save(path, **({"lossless": True} if path.endswith("webp") else {}))
    paths.append(path)
    labels.append(i % 3)
  return paths, np.array(labels, np.int32)


def read_all(input_fn, batches=None):
  """The batches of an input_fn run in a graph session, as the Estimator runs it."""
  with tf.Graph().as_default() as graph:
    element = tf.compat.v1.data.make_one_shot_iterator(input_fn()).get_next()
    out = []
    with tf.compat.v1.Session() as session:
      for _ in range(10**9 if batches is None else batches):
        try:
          out.append(session.run(element))
        except tf.errors.OutOfRangeError:
          break
  return out, graph


def pixels_and_labels(batches):
  return (np.concatenate([features["x"] for features, _ in batches]),
          np.concatenate([labels for _, labels in batches]))


def test_file_images_index_and_decode_as_decode_files(files):
  paths, _ = files
  images = stream.FileImages(paths, DECODING)
  expected = decode.decode_files(paths, DECODING)
  assert (len(images), images.shape, images.ndim, images.dtype) == (
      15, (15, 12, 16, 3), 4, np.uint8)
  np.testing.assert_array_equal(np.asarray(images), expected)
  np.testing.assert_array_equal(images[2], expected[2])
  np.testing.assert_array_equal(images[-1], expected[-1])
  part = images[3:9:2]
  assert isinstance(part, stream.FileImages) and part.paths == tuple(paths[3:9:2])
  np.testing.assert_array_equal(np.asarray(part), expected[3:9:2])
  np.testing.assert_array_equal(np.asarray(images[np.array([7, 0, 7])]), expected[[7, 0, 7]])
  mask = np.arange(15) % 4 == 0
  np.testing.assert_array_equal(np.asarray(images[mask]), expected[mask])
  assert np.asarray(images[5:5]).shape == (0, 12, 16, 3)
  assert np.asarray(images[:2], np.float32).dtype == np.float32
  with pytest.raises(IndexError):
    images[15]  # pylint: disable=pointless-statement


def test_eval_reads_every_file_once_in_order(files):
  paths, labels = files
  images = stream.FileImages(paths, DECODING)
  batches, _ = read_all(stream_input.input_fn(images, labels, 4, train=False))
  x, y = pixels_and_labels(batches)
  assert [len(b[1]) for b in batches] == [4, 4, 4, 3]
  assert x.dtype == np.float32 and x.shape == (15, 12, 16, 3)
  np.testing.assert_array_equal(y, labels)
  np.testing.assert_allclose(x, decode.decode_files(paths, DECODING) / 255.0, rtol=1e-6)


def test_train_shuffles_repeats_every_file_per_pass_and_is_seeded(files):
  paths, labels = files
  # Labels are the file indices here, so a pass's labels show which files it read.
  images, index = stream.FileImages(paths, DECODING), np.arange(15, dtype=np.int32)
  fn = lambda seed: stream_input.input_fn(images, index, 5, train=True, seed=seed)
  first, _ = read_all(fn(3), batches=6)  # two passes over 15 files
  x, y = pixels_and_labels(first)
  assert x.shape == (30, 12, 16, 3) and 0.0 <= x.min() and x.max() <= 1.0
  assert sorted(y[:15]) == list(range(15)) and sorted(y[15:]) == list(range(15))
  assert list(y[:15]) != list(range(15)) and list(y[:15]) != list(y[15:])
  np.testing.assert_array_equal(y, pixels_and_labels(read_all(fn(3), batches=6)[0])[1])
  assert list(y) != list(pixels_and_labels(read_all(fn(4), batches=6)[0])[1])
  expected = decode.decode_files(paths, DECODING) / 255.0
  np.testing.assert_allclose(x, expected[y], rtol=1e-6)


def test_predict_has_features_only_and_augment_is_applied(files):
  paths, labels = files
  seen = []

  def augment(ds):
    seen.append(ds.element_spec)
    return ds.map(lambda features: {"x": 1.0 - features["x"]})
  fn = stream_input.input_fn(stream.FileImages(paths[:5], DECODING), labels[:5], 2, train=False,
                       with_labels=False, augment=augment)
  batches, _ = read_all(lambda: fn().map(lambda features: (features, 0)))
  x = np.concatenate([features["x"] for features, _ in batches])
  assert set(seen[0]) == {"x"} and seen[0]["x"].shape.as_list() == [None, 12, 16, 3]
  no_labels = stream_input.input_fn(stream.FileImages(paths[:5], DECODING), None, 2, train=False)
  with tf.Graph().as_default():
    assert set(no_labels().element_spec) == {"x"}  # labels None: features only, as predict
  np.testing.assert_allclose(x, 1.0 - decode.decode_files(paths[:5], DECODING) / 255.0,
                             rtol=1e-6)


def test_the_file_list_stays_out_of_the_graph(tmp_path):
  paths = [str(tmp_path / f"a_rather_long_name_of_an_image_{i:06d}.png") for i in range(3000)]
  _, graph = read_all(stream_input.input_fn(stream.FileImages(paths, DECODING), None, 8, True,
                                      seed=1), batches=0)
  assert graph.as_graph_def().ByteSize() < 50_000  # the 3,000 names alone are 130 KB


def test_cache_is_read_without_the_files(files, tmp_path, monkeypatch):
  paths, labels = files
  copies = [shutil.copy(p, tmp_path / os.path.basename(p)) for p in paths]
  images = stream.FileImages(copies, DECODING)
  streamed, _ = read_all(stream_input.input_fn(images, labels, 4, train=False))
  cache = str(tmp_path / "cache")
  shards = stream_cache.build_cache(images, labels, cache)
  mixed = stream_cache.build_cache(images, labels, cache, shuffled=True)  # what training reads
  monkeypatch.setattr(stream, "from_files", None)  # the files' pipeline is not built again
  assert stream_cache.build_cache(images, labels, cache) == shards
  evaluate = stream_input.input_fn(images, labels, 4, train=False, cache_dir=cache)
  train = stream_input.input_fn(images, labels, 5, train=True, seed=2, cache_dir=cache)
  assert stream_cache.build_cache(images, labels, cache, shuffled=True) == mixed
  for path in copies:  # the key reads the files' sizes and mtimes; the pipelines read shards
    os.remove(path)
  cached, _ = read_all(evaluate)
  np.testing.assert_array_equal(pixels_and_labels(cached)[0], pixels_and_labels(streamed)[0])
  np.testing.assert_array_equal(pixels_and_labels(cached)[1], labels)
  x, y = pixels_and_labels(read_all(train, batches=6)[0])
  assert sorted(y[:15]) == sorted(labels) and x.shape == (30, 12, 16, 3)
  expected = {tuple(row) for row in np.concatenate(
      [labels[:, None], pixels_and_labels(streamed)[0].reshape(15, -1)], axis=1).tolist()}
  got = np.concatenate([y[:, None], x.reshape(30, -1)], axis=1).tolist()
  assert {tuple(row) for row in got} == expected  # every image comes with its own label


def test_cache_shards_are_shuffled_for_training_and_named_by_content(files, tmp_path,
                                                                     monkeypatch):
  paths, labels = files
  monkeypatch.setattr(stream_cache, "SHARD_BYTES", 3 * (4 + 12 * 16 * 3))  # 3 images a shard
  images = stream.FileImages(paths, DECODING)
  ordered = stream_cache.build_cache(images, labels, str(tmp_path))
  shuffled = stream_cache.build_cache(images, labels, str(tmp_path), shuffled=True)
  assert len(ordered) == 5 and os.path.dirname(ordered[0]) != os.path.dirname(shuffled[0])
  assert sorted(os.listdir(tmp_path)) == sorted(
      os.path.basename(os.path.dirname(s[0])) for s in (ordered, shuffled))  # no tmp left
  os.remove(ordered[2])  # a damaged cache is built again
  assert stream_cache.build_cache(images, labels, str(tmp_path)) == ordered
  assert os.path.isfile(ordered[2])


def test_bad_files_become_one_usage_error_naming_them(files, tmp_path):
  paths, _ = files
  data = open(paths[1], "rb").read()  # a JPEG cut short: its header reads, its data does not
  cut, webp = tmp_path / "cut.jpg", tmp_path / "bad.webp"
  cut.write_bytes(data[:len(data) // 2])
  webp.write_bytes(b"no image")
  for bad, words in ((str(cut), "does not decode"), (str(webp), "does not decode"),
                     (str(tmp_path / "gone.png"), "cannot be read")):
    images = stream.FileImages(paths[:3] + [bad] + paths[3:5], DECODING)
    with pytest.raises(tf.errors.OpError) as raised:
      read_all(stream_input.input_fn(images, None, 2, train=False))
    error = stream.explain(images, raised.value)
    assert isinstance(error, UsageError) and bad in str(error) and words in str(error)
    with pytest.raises(UsageError, match=os.path.basename(bad)):
      stream_cache.build_cache(images, None, str(tmp_path / "cache"))


def test_cache_folder_is_in_the_record_cache(monkeypatch, tmp_path):
  monkeypatch.setenv("MNIST_ESTIMATOR_CACHE", str(tmp_path))
  assert stream_cache.cache_folder() == str(tmp_path / "shards")


def test_should_stream_above_the_limit_or_a_quarter_of_free_memory(monkeypatch):
  photo = decode.Decoding(224, 224, 3)
  assert stream.memory_bytes(1000, photo) == 1000 * 224 * 224 * 3
  assert not stream.should_stream(1000, photo, limit=150_528_000)
  assert stream.should_stream(1001, photo, limit=150_528_000)
  monkeypatch.setattr(stream.headers_lib, "memory_available", lambda: 64 * 2**30)
  assert not stream.should_stream(3500, photo) and stream.should_stream(3600, photo)  # 512 MiB
  monkeypatch.setattr(stream.headers_lib, "memory_available", lambda: 2**30)
  assert not stream.should_stream(1750, photo) and stream.should_stream(1800, photo)  # 256 MiB
  monkeypatch.setattr(stream.headers_lib, "memory_available", lambda: None)
  assert stream.should_stream(7200, photo) and not stream.should_stream(60000, stream.decode
                                                                        .Decoding(28, 28, 1))
