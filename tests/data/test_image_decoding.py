"""Training's pixels are decode.py's pixels (as predict and the SavedModel's); memory first."""

import io

import helpers
import numpy as np
import pytest

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.data import decode
from mnist_estimator.data import stream
from mnist_estimator.data import headers


def options(**values):
  return datasets.ImageOptions(**values)


def _gradient(seed, size, channels=None, dtype=np.uint8):
  """Smooth pixels with every level in use (a resize of noise hides little)."""
  h, w = size
  top = np.iinfo(dtype).max
  base = (np.arange(h)[:, None] * w + np.arange(w)[None, :]) * top // (h * w)
  shift = np.random.RandomState(seed).randint(0, top // 4)
  image = ((base + shift) % (top + 1)).astype(dtype)
  return np.stack([image, image[::-1], image[:, ::-1]], -1)[..., :channels] if channels \
      else image


KINDS = {  # name: (suffix, pixels, PIL mode to convert to, save options)
    "png gray": (".png", lambda s, size: _gradient(s, size), None, {}),
    "png rgb": (".png", lambda s, size: _gradient(s, size, 3), None, {}),
    "png rgba": (".png", lambda s, size: _gradient(s, size, 3), "RGBA", {}),
    "png palette": (".png", lambda s, size: _gradient(s, size, 3), "P", {}),
    "png 16-bit": (".png", lambda s, size: _gradient(s, size, dtype=np.uint16), None, {}),
    "jpeg gray": (".jpg", lambda s, size: _gradient(s, size), None, {"quality": 90}),
    "jpeg rgb": (".jpg", lambda s, size: _gradient(s, size, 3), None, {"quality": 90}),
    "gif": (".gif", lambda s, size: _gradient(s, size, 3), "P", {}),
    "bmp": (".bmp", lambda s, size: _gradient(s, size, 3), None, {}),
}


def _folder(root, kind, sizes=((12, 16),)):
  """root/train and root/test of classes a, b: files in a known order, as the rows are."""
  suffix, make, mode, save = KINDS[kind]
  paths = {"train": [], "test": []}
  for split, count in (("train", 3), ("test", 1)):
    for name in ("a", "b"):
      for i in range(count):
        size = sizes[(i + len(paths[split])) % len(sizes)]
        path = root / split / name / f"{i}{suffix}"
        paths[split].append(helpers.write_picture(path, make(len(paths[split]) + i, size), mode,
                                                  **save))
  return paths


@pytest.mark.parametrize("resized", [False, True])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_training_pixels_are_decode_of_each_file(tmp_path, kind, resized):
  sizes = ((12, 16), (20, 14)) if resized else ((12, 16),)
  paths = _folder(tmp_path / "f", kind, sizes)
  chosen = options(image_size=(10, 12)) if resized else options()
  data = helpers.load_whole(f"folder:{tmp_path / 'f'}", options=chosen)
  decoding = decode.Decoding(*data.image_shape, resized=resized)
  for split, x in (("train", data.x_train), ("test", data.x_test)):
    expected = [decode.decode(decode.file_bytes(p), decoding).numpy() for p in paths[split]]
    np.testing.assert_array_equal(x, np.stack(expected), err_msg=f"{kind} {split}")
  assert data.decoding == decoding  # what the record and the SavedModel repeat


def test_a_16_bit_png_keeps_its_levels(tmp_path):
  _folder(tmp_path / "f", "png 16-bit")
  data = helpers.load_whole(f"folder:{tmp_path / 'f'}")
  assert data.image_shape == (12, 16, 1)
  assert len(np.unique(data.x_train)) > 100  # not 0 and 255 only


def test_an_image_size_equal_to_the_files_is_not_a_resize(tmp_path):
  _folder(tmp_path / "f", "png rgb")
  data = helpers.load_whole(f"folder:{tmp_path / 'f'}", options=options(image_size=(12, 16)))
  assert not data.decoding.resized and "resized" not in data.source


def test_channels_convert_as_decode_does_and_the_source_says_so(tmp_path):
  paths = _folder(tmp_path / "f", "png rgb")
  data = helpers.load_whole(f"folder:{tmp_path / 'f'}", options=options(channels=1))
  assert data.image_shape == (12, 16, 1) and "as gray" in data.source
  expected = decode.decode(decode.file_bytes(paths["test"][0]), data.decoding).numpy()
  np.testing.assert_array_equal(data.x_test[0], expected)


def _never(*args, **kwargs):
  raise AssertionError("decoded before the memory check")


def test_a_set_too_large_for_memory_streams_or_is_refused_before_decoding(tmp_path,
                                                                          monkeypatch):
  _folder(tmp_path / "f", "jpeg rgb", sizes=((300, 400),))
  monkeypatch.setattr(headers, "memory_available", lambda: 2 * 2**20)  # 2 MiB
  monkeypatch.setattr(decode, "decode_files_keeping", _never)
  streamed = helpers.load_whole(f"folder:{tmp_path / 'f'}")  # --stream=auto: from the files
  assert isinstance(streamed.x_train, stream.FileImages) and "streamed" in streamed.source
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"folder:{tmp_path / 'f'}", options=options(stream="no"))
  message = str(error.value)
  assert "8 images" in message and "300x400x3" in message and "--image_size=" in message
  h, w = map(int, message.split("--image_size=")[1].split()[0].split("x"))
  assert abs(h / w - 0.75) < 0.05 and 8 * h * w * 3 * 3 <= 2**20  # the aspect; it fits
  monkeypatch.undo()
  monkeypatch.setattr(headers, "memory_available", lambda: 2 * 2**20)
  data = helpers.load_whole(f"folder:{tmp_path / 'f'}", options=options(image_size=(h, w),
                                                                        stream="no"))
  assert data.image_shape == (h, w, 3)  # memory follows the decoded size


def test_the_suggested_size_keeps_the_aspect_and_a_small_long_side():
  photos = decode.Decoding(768, 1024, 3)
  assert headers.suggest_size(600, photos, 2**30) == (192, 256)
  assert headers.suggest_size(600, decode.Decoding(1024, 768, 3), 2**30) == (256, 192)
  h, w = headers.suggest_size(10**6, photos, 2**30)
  assert 10**6 * h * w * 3 * 3 <= 2**29 and h < w


def test_damaged_image_data_is_one_line_naming_the_file(tmp_path):
  paths = _folder(tmp_path / "f", "png rgb")
  with open(paths["train"][1], "rb") as f:
    data = f.read()
  with open(paths["train"][1], "wb") as f:
    f.write(data[:60])  # the header reads; the pixels do not
  with pytest.raises(UsageError) as error:
    helpers.load_whole(f"folder:{tmp_path / 'f'}")
  message = str(error.value)
  assert paths["train"][1] in message and "--skip_bad_images" in message
  assert "\n" not in message and not any(w in message for w in ("[[", "Op:", "node", "Graph"))
  data = helpers.load_whole(f"folder:{tmp_path / 'f'}", options=options(skip_bad_images=True))
  assert len(data.y_train) == 5 and "1 bad files skipped" in data.source


def test_header_probe_tells_gray_palettes_from_colour_ones():
  from PIL import Image  # pylint: disable=g-import-not-at-top

  def header(pixels, mode, fmt):
    out = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(out, fmt)
    return headers.read_header(out.getvalue())
  gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (4, 1))
  assert header(gray, "P", "PNG")[2] is False and header(gray, "P", "GIF")[2] is False
  assert header(_gradient(0, (4, 25), 3), "P", "PNG")[2] is True
  assert header(gray, "L", "BMP")[2] is False
