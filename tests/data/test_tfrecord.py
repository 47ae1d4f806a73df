"""tfrecord:GLOBS: class texts, sizes, damaged examples, decode.py's pixels, its options."""

import gzip
import io

import helpers
import numpy as np
import pytest

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.data import decode
from mnist_estimator.data import headers


def options(**values):
  return datasets.ImageOptions(**values)


def png(seed, size=(8, 6), channels=3, dtype=np.uint8):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  top = np.iinfo(dtype).max
  pixels = np.random.RandomState(seed).randint(0, top, (*size, channels)).astype(dtype)
  out = io.BytesIO()
  Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(out, "PNG")
  return out.getvalue()


def _write(tmp_path, count=12, texts=None, encoded=None, name="train.tfrecord"):
  labels = [i % 3 for i in range(count)]
  encoded = encoded or [png(i) for i in range(count)]
  return helpers.write_tfrecord_examples(tmp_path / name, encoded, labels, texts), encoded


def one_line(error):
  message = str(error.value)
  assert "\n" not in message and not any(
      w in message for w in ("[[", "Op:", "node", "Graph execution", "Traceback")), message
  return message


def test_class_names_come_from_the_class_text(tmp_path):
  path, _ = _write(tmp_path, texts=[("cat", "dog", "eel")[i % 3] for i in range(12)])
  data = helpers.load_whole(f"tfrecord:{path}")
  assert data.class_names == ("cat", "dog", "eel")
  assert "class names from image/class/text" in data.source
  plain, _ = _write(tmp_path, name="plain.tfrecord")
  assert helpers.load_whole(f"tfrecord:{plain}").class_names == ("0", "1", "2")


@pytest.mark.parametrize("texts, words", [
    (["cat", "dog", "eel"] * 3 + ["cat", "dog", "owl"], ["example 11", "'owl'", "example 2"]),
    (["cat", "dog", "cat"] * 4, ["example 2 has label 2 named 'cat'", "example 0 has label 0"]),
    (["cat", "dog", "eel"] * 3 + ["cat", "dog", None], ["example 11", "no image/class/text"]),
])
def test_contradicting_class_texts_are_refused(tmp_path, texts, words):
  path, _ = _write(tmp_path, texts=texts)
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"tfrecord:{path}")
  message = one_line(error)
  assert all(w in message for w in words), message


def test_mixed_sizes_are_refused_unless_image_size(tmp_path):
  encoded = [png(i, (8, 6) if i % 4 else (10, 10)) for i in range(12)]
  path, _ = _write(tmp_path, encoded=encoded)
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"tfrecord:{path}")
  message = one_line(error)
  assert "12 images" in message and "8x6: 9, 10x10: 3" in message
  assert "--image_size=8x6" in message
  data = helpers.load_whole(f"tfrecord:{path}", options=options(image_size=(8, 6), channels=1,
                                                          test_split=0.25))
  assert data.image_shape == (8, 6, 1) and data.decoding.resized
  assert "resized to 8x6" in data.source and "as gray" in data.source
  every = {decode.decode(e, data.decoding).numpy().tobytes() for e in encoded}
  assert all(x.tobytes() in every for x in np.concatenate([data.x_train, data.x_test]))


def test_pixels_are_decode_of_the_bytes_16_bit_too(tmp_path):
  encoded = [png(i, channels=1, dtype=np.uint16) for i in range(6)]
  train = helpers.write_tfrecord_examples(tmp_path / "train.tfrecord", encoded, [0, 1] * 3)
  test = helpers.write_tfrecord_examples(tmp_path / "test.tfrecord", encoded[:2], [0, 1])
  data = helpers.load_whole(f"tfrecord:{train},{test}")
  assert data.decoding == decode.Decoding(8, 6, 1)
  expected = np.stack([decode.decode(e, data.decoding).numpy() for e in encoded])
  np.testing.assert_array_equal(data.x_train, expected)
  assert len(np.unique(data.x_train)) > 100


def test_a_damaged_example_is_one_line_or_skipped(tmp_path):
  encoded = [png(i) for i in range(12)]
  encoded[3] = b"not an image at all"
  encoded[7] = encoded[7][:60]  # the header reads, the pixels do not
  path, _ = _write(tmp_path, encoded=encoded)
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"tfrecord:{path}")
  message = one_line(error)
  assert f"{path} example 3" in message and "--skip_bad_images" in message, message
  data = helpers.load_whole(f"tfrecord:{path}", options=options(skip_bad_images=True,
                                                          test_split=0.25))
  assert len(data.y_train) + len(data.y_test) == 10 and "2 bad examples skipped" in data.source


def test_damaged_files_and_records_are_one_line(tmp_path):
  path, _ = _write(tmp_path)
  with open(path, "rb") as f:
    data = f.read()
  (tmp_path / "cut.tfrecord").write_bytes(data[:len(data) // 2 + 10])
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"tfrecord:{tmp_path / 'cut.tfrecord'}")
  assert "ends inside record 6" in one_line(error)
  (tmp_path / "bad.tfrecord").write_bytes(data[:20] + b"\x00" * 40 + data[60:])
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"tfrecord:{tmp_path / 'bad.tfrecord'}")
  assert "cannot be read after record 0" in one_line(error)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.io.TFRecordWriter(str(tmp_path / "raw.tfrecord")) as writer:
    writer.write(b"\xff\xff\xff not a protocol buffer")
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"tfrecord:{tmp_path / 'raw.tfrecord'}")
  assert "example 0 is not a tf.Example" in one_line(error)


def test_gzip_compressed_files_are_read(tmp_path):
  path, _ = _write(tmp_path)
  with open(path, "rb") as f:
    (tmp_path / "z.tfrecord.gz").write_bytes(gzip.compress(f.read()))
  data = helpers.load_whole(f"tfrecord:{tmp_path / 'z.tfrecord.gz'}")
  assert len(data.y_train) + len(data.y_test) == 12


def test_test_split_is_refused_with_a_test_glob(tmp_path):
  train, _ = _write(tmp_path)
  test, _ = _write(tmp_path, count=6, name="test.tfrecord")
  with pytest.raises(UsageError, match=r"--test_split=0.2 does not apply.*drop"):
    helpers.load_whole(f"tfrecord:{train},{test}", options=options(test_split=0.2))
  assert len(helpers.load_whole(f"tfrecord:{train}", options=options(test_split=0.5))
             .y_test) == 6


def test_memory_is_checked_before_decoding(tmp_path, monkeypatch):
  path, _ = _write(tmp_path)
  monkeypatch.setattr(headers, "memory_available", lambda: 1000)
  monkeypatch.setattr(decode, "decode_encoded_keeping",
                      lambda *a: pytest.fail("decoded before the memory check"))
  with pytest.raises(UsageError, match=r"12 images.*8x6x3.*--image_size="):
    helpers.load_whole(f"tfrecord:{path}")
