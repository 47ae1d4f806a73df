"""--augment: each op does what it says, per image, seeded, in a v1 graph's tf.data; the grid."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.head import summaries
from mnist_estimator.inputs import augment

SEED = tf.constant([3, 4], tf.int64)


def run(images, names, seed=SEED):
  return augment.augment_batch(tf.constant(images, tf.float32), names, seed).numpy()


def random_images(batch=8, height=12, width=17, channels=1, seed=0):
  return np.random.RandomState(seed).uniform(size=(batch, height, width, channels)).astype(
      np.float32)


def dot(batch, height, width, y, x, channels=1):
  images = np.zeros((batch, height, width, channels), np.float32)
  images[:, y, x, :] = 1.0
  return images


def centroid(image):
  """(y, x) of an image's mass (first channel)."""
  ys, xs = np.mgrid[:image.shape[0], :image.shape[1]]
  mass = image[..., 0]
  return np.array([(ys * mass).sum(), (xs * mass).sum()]) / mass.sum()


def test_names_describe_and_strengths():
  assert augment.NAMES == ("flip", "shift", "rotate", "zoom", "crop", "brightness", "contrast")
  assert augment.describe(("rotate", "flip", "shift")) == "flip, shift ±10%, rotate ±10°"
  assert augment.describe("shift:0.15,contrast") == "shift ±15%, contrast ±20%"
  assert augment.describe(()) == "none"
  assert augment.parse(["zoom:0.2", "flip"]) == {"flip": 0.5, "zoom": 0.2}


@pytest.mark.parametrize("names, words", [
    (("shift", "shfit"), ["unknown --augment name 'shfit'", "choose from: " +
                          ", ".join(augment.NAMES)]),
    (("shift:0.7",), ["shift:0.7", "at most 0.5"]),
    (("rotate:ten",), ["rotate:ten", "a number above 0"]),
    (("zoom:0",), ["zoom:0", "above 0"]),
    (("crop", "crop:0.2"), ["crop twice"]),
])
def test_bad_names_and_strengths_are_refused_in_one_line(names, words):
  with pytest.raises(UsageError) as info:
    augment.check(names)
  message = str(info.value)
  assert "\n" not in message and all(word in message for word in words), message


@pytest.mark.parametrize("channels, height, width", [(1, 12, 17), (3, 20, 9)])
def test_every_op_keeps_shape_dtype_and_range(channels, height, width):
  images = random_images(6, height, width, channels)
  for names in [(name,) for name in augment.NAMES] + [augment.NAMES]:
    out = augment.augment_batch(tf.constant(images), names, SEED)
    assert out.shape == images.shape and out.dtype == tf.float32, names
    assert 0.0 <= out.numpy().min() and out.numpy().max() <= 1.0, names
    assert not np.array_equal(out.numpy(), images), names
  np.testing.assert_array_equal(run(images, ()), images)


def test_a_seed_repeats_and_each_image_gets_its_own_parameters():
  images = np.repeat(random_images(1, 16, 16), 8, axis=0)  # one image, 8 times
  first = run(images, augment.NAMES)
  np.testing.assert_array_equal(first, run(images, augment.NAMES))
  assert not np.array_equal(first, run(images, augment.NAMES, tf.constant([3, 5])))
  distinct = {out.tobytes() for out in first}
  assert len(distinct) == 8


def test_adding_a_name_leaves_the_others_draws_alone():
  images = random_images(8, 16, 16)
  shifted = run(images, ("shift",))
  shifted_brighter = run(images, ("shift", "brightness"))
  # Brightness adds one value per image: where nothing clipped, the shift is the same one.
  for before, after in zip(shifted, shifted_brighter):
    inside = (before > 0.2) & (before < 0.8)
    assert inside.sum() > 50 and np.ptp((after - before)[inside]) < 1e-5


def test_flip_mirrors_left_right():
  images = random_images(16, 9, 13, 3)
  np.testing.assert_array_equal(run(images, ("flip:1",)), images[:, :, ::-1])
  out = run(images, ("flip",))
  mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)]
  kept = [np.array_equal(o, i) for o, i in zip(out, images)]
  assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)


def test_shift_moves_whole_pixels_within_its_strength():
  images = dot(32, 20, 30, 10, 15)
  out = run(images, ("shift:0.2",))
  moves = np.array([centroid(o) - (10, 15) for o in out])
  np.testing.assert_array_equal(moves, np.round(moves))  # whole pixels: no blur
  np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), 1.0)
  assert np.abs(moves[:, 0]).max() <= 4 and np.abs(moves[:, 1]).max() <= 6
  assert len({tuple(m) for m in moves}) > 10


def test_crop_is_a_window_of_the_zero_padded_image():
  images = random_images(64, 16, 24)
  out = run(images, ("crop",))  # pads 2 rows and 3 columns
  padded = np.pad(images, [(0, 0), (2, 2), (3, 3), (0, 0)])
  offsets = []
  for o, p in zip(out, padded):
    offsets += [(y, x) for y in range(5) for x in range(7)
                if np.array_equal(o, p[y:y + 16, x:x + 24])]
  assert len(offsets) == 64, "not each a window of the padded image"
  ys, xs = zip(*offsets)
  assert set(ys) == set(range(5)) and set(xs) == set(range(7))  # every offset, the ends too


def test_transforms_rotate_counter_clockwise_and_zoom_about_the_centre():
  def moved(angle, scale):
    images = tf.constant(dot(1, 21, 31, 10, 15 + 6))  # 6 pixels right of the centre
    matrices = augment.transforms(1, 21, 31, tf.constant([False]), tf.constant([angle]),
                                  tf.constant([scale]), tf.zeros([1]), tf.zeros([1]))
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=matrices, output_shape=[21, 31], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")
    return centroid(out.numpy()[0]) - (10, 15)

  np.testing.assert_allclose(moved(math.pi / 2, 1.0), (-6, 0), atol=1e-4)  # now above
  np.testing.assert_allclose(moved(0.0, 1.5), (0, 9), atol=1e-4)


def test_rotate_keeps_the_distance_from_the_centre_and_zoom_scales_it():
  images = dot(32, 21, 31, 10, 15 + 8)  # 8 pixels right of the centre

  def polar(names):
    moves = np.array([centroid(o) - (10, 15) for o in run(images, names)])
    return np.hypot(*moves.T), np.degrees(np.arctan2(-moves[:, 0], moves[:, 1]))

  radius, angle = polar(("rotate:30",))
  np.testing.assert_allclose(radius, 8, atol=0.3)
  assert np.abs(angle).max() <= 30.5 and np.ptp(angle) > 20
  radius, angle = polar(("zoom:0.25",))
  assert 6 - 0.1 <= radius.min() and radius.max() <= 10 + 0.1 and np.ptp(radius) > 2
  np.testing.assert_allclose(angle, 0, atol=1e-3)


def test_brightness_adds_and_contrast_scales_per_image():
  images = 0.4 + 0.2 * random_images(16, 10, 10, 3)  # 0.4..0.6: nothing clips
  delta = (run(images, ("brightness",)) - images).reshape(16, -1)
  np.testing.assert_allclose(delta, np.broadcast_to(delta[:, :1], delta.shape), atol=1e-6)
  assert np.abs(delta).max() <= 0.1 + 1e-6 and np.ptp(delta[:, 0]) > 0.05
  out = run(images, ("contrast",))
  np.testing.assert_allclose(out.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=1e-5)
  ratio = out.std(axis=(1, 2)) / images.std(axis=(1, 2))
  assert 0.8 - 1e-4 <= ratio.min() and ratio.max() <= 1.2 + 1e-4 and np.ptp(ratio) > 0.1


def graph_batches(make, count=3):
  """Runs a dataset built by `make()` in a tf.compat.v1 graph and Session."""
  with tf.Graph().as_default():
    nxt = tf.compat.v1.data.make_one_shot_iterator(make()).get_next()
    with tf.compat.v1.Session() as sess:
      return [sess.run(nxt) for _ in range(count)]


def train_dataset(images, labels):
  return tf.data.Dataset.from_tensor_slices(({"x": images}, labels)).repeat().batch(4)


def test_augment_dataset_in_a_v1_graph_is_seeded_per_batch_with_a_parallel_map():
  images, labels = random_images(12, 8, 11, 3), np.arange(12, dtype=np.int32)
  make = lambda seed: augment.augment_dataset(train_dataset(images, labels),
                                              ("shift", "rotate", "contrast"), seed, 3)
  first, again = graph_batches(lambda: make(7)), graph_batches(lambda: make(7))
  other = graph_batches(lambda: make(8))
  for (f, _), (a, _), (o, _) in zip(first, again, other):
    assert f["x"].shape == (4, 8, 11, 3)
    np.testing.assert_array_equal(f["x"], a["x"])
    assert not np.array_equal(f["x"], o["x"])
  np.testing.assert_array_equal(np.concatenate([y for _, y in first]), labels)
  unseeded = [graph_batches(lambda: make(None), 1)[0][0]["x"] for _ in range(2)]
  assert not np.array_equal(*unseeded)


def test_augment_batch_with_an_int_seed_repeats_in_a_sequential_map():
  images, labels = random_images(8, 10, 10), np.zeros(8, np.int32)

  def make():
    ds = train_dataset(images, labels)
    return ds.map(lambda f, y: ({"x": augment.augment_batch(f["x"], ("rotate",), 5)}, y))

  first, again = graph_batches(make), graph_batches(make)
  for (f, _), (a, _) in zip(first, again):
    np.testing.assert_array_equal(f["x"], a["x"])
  assert not np.array_equal(first[0][0]["x"], first[2][0]["x"])  # a new draw per batch


def test_augment_dataset_takes_features_alone_and_no_names_changes_nothing():
  ds = tf.data.Dataset.from_tensor_slices(random_images(4, 6, 6)).batch(2)
  out = next(iter(augment.augment_dataset(ds, ("flip:1",), 1)))
  assert out.shape == (2, 6, 6, 1)
  assert augment.augment_dataset(ds, (), 1) is ds


@pytest.mark.parametrize("batch, channels", [(20, 1), (3, 3)])
def test_augmented_grid_tiles_the_batch_into_one_heavy_summary(batch, channels):
  images = random_images(batch, 5, 7, channels)
  with tf.Graph().as_default():
    grid = summaries.add_augmented_grid(tf.constant(images), max_images=16)
    assert grid.shape.as_list() == [1, 4 * 6, 4 * 8, channels]
    heavy = tf.compat.v1.get_collection(summaries.HEAVY)
    assert [op.name for op in heavy] == ["augmented_images:0"]
    with tf.compat.v1.Session() as sess:
      value = sess.run(grid)[0]
  expected = np.full((4 * 6, 4 * 8, channels), 0.5, np.float32)  # grey lines
  for i in range(16):
    row, col = divmod(i, 4)
    expected[row * 6:row * 6 + 5, col * 8:col * 8 + 7] = images[i] if i < batch else 0
  np.testing.assert_array_equal(value, expected)
