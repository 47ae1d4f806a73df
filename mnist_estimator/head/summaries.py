"""TensorBoard summaries of a training graph: input images and their grid, weights, filters."""

import math
from typing import Optional

import tensorflow as tf

# Histograms and images cost far more than scalars (a histogram of cnn's 3.2M-weight dense
# kernel takes ~0.4 s), so they live in their own collection, written less often.
HEAVY = "mnist_estimator_heavy_summaries"


def filter_grid(kernel: tf.Tensor) -> tf.Tensor:
  """Tiles a conv kernel's filters (first input channel) into one [1, H, W, 1] image in 0..1.

  Args:
    kernel: [k, k, in_channels, filters] conv kernel.

  Returns:
    A float32 image batch of one grid, one cell (plus a 1-pixel border) per filter.
  """
  k_h, k_w, _, count = kernel.shape.as_list()
  cols = int(math.ceil(math.sqrt(count)))
  rows = int(math.ceil(count / cols))
  filters = tf.transpose(kernel[:, :, 0, :], [2, 0, 1])  # [count, k, k]
  low, high = tf.reduce_min(filters), tf.reduce_max(filters)
  filters = (filters - low) / tf.maximum(high - low, 1e-8)
  filters = tf.pad(filters, [[0, rows * cols - count], [0, 1], [0, 1]])  # blank cells, borders
  grid = tf.reshape(filters, [rows, cols, k_h + 1, k_w + 1])
  grid = tf.reshape(tf.transpose(grid, [0, 2, 1, 3]), [rows * (k_h + 1), cols * (k_w + 1)])
  return grid[tf.newaxis, :, :, tf.newaxis]


def heavy_summary_hook(every_n_steps: Optional[int],
                       output_dir: Optional[str]) -> Optional[tf.compat.v1.train.SessionRunHook]:
  """A SummarySaverHook writing the HEAVY collection every N steps; None if there is none."""
  op = tf.compat.v1.summary.merge_all(key=HEAVY)
  if op is None or not every_n_steps or not output_dir:
    return None
  return tf.compat.v1.train.SummarySaverHook(save_steps=every_n_steps, output_dir=output_dir,
                                             summary_op=op)


def add_train_summaries(images: tf.Tensor, max_images: int = 3) -> None:
  """Adds input-image, weight-histogram and conv-filter summaries (HEAVY collection).

  Args:
    images: the model's input batch, float [batch, H, W, C] in 0..1.
    max_images: how many input images to show.
  """
  tf.compat.v1.summary.image("input_images", images, max_outputs=max_images,
                             collections=[HEAVY])
  for variable in tf.compat.v1.trainable_variables():
    name = variable.op.name
    # A summary's tag is its op name: prefixes keep them apart from the variables' own ops.
    tf.compat.v1.summary.histogram("weights/" + name, variable, collections=[HEAVY])
    if variable.shape.rank == 4:
      tf.compat.v1.summary.image("filters/" + name, filter_grid(variable), max_outputs=1,
                                 collections=[HEAVY])


def image_grid(images: tf.Tensor, max_images: int = 16) -> tf.Tensor:
  """Tiles the first images of a batch into one [1, rows*(H+1), cols*(W+1), C] image.

  Args:
    images: float [batch, H, W, C] in 0..1, H, W and C known when the graph is built.
    max_images: cells in the grid (cols = ceil(sqrt(max_images))); a smaller batch
      leaves black cells, so the grid's size does not depend on the batch.

  Returns:
    A float32 batch of one grid; a mid-grey 1-pixel line right of and below each cell.
  """
  height, width, channels = images.shape.as_list()[1:]
  cols = int(math.ceil(math.sqrt(max_images)))
  rows = int(math.ceil(max_images / cols))
  images = tf.cast(images[:max_images], tf.float32)
  blank = rows * cols - tf.shape(images)[0]
  images = tf.pad(images, [[0, blank], [0, 0], [0, 0], [0, 0]])
  # Grey, not black or white: the cells stay apart on dark (MNIST) and light backgrounds.
  images = tf.pad(images, [[0, 0], [0, 1], [0, 1], [0, 0]], constant_values=0.5)
  grid = tf.reshape(images, [rows, cols, height + 1, width + 1, channels])
  grid = tf.reshape(tf.transpose(grid, [0, 2, 1, 3, 4]),
                    [rows * (height + 1), cols * (width + 1), channels])
  return grid[tf.newaxis]


def add_augmented_grid(images: tf.Tensor, max_images: int = 16) -> tf.Tensor:
  """Adds one grid of the (augmented) training images, tag "augmented_images" (HEAVY).

  Args:
    images: the model's input batch, float [batch, H, W, C] in 0..1.
    max_images: how many images the grid shows.

  Returns:
    The grid tensor, [1, rows*(H+1), cols*(W+1), C].
  """
  grid = image_grid(images, max_images)
  tf.compat.v1.summary.image("augmented_images", grid, max_outputs=1, collections=[HEAVY])
  return grid
