"""5x5 SAME convolutions by Winograd's minimal filtering, F(4x4, 5x5), in TensorFlow matmuls."""

# oneDNN computes a 5x5 convolution directly: 25 multiply-adds per output pixel and channel
# pair. F(4x4, 5x5) needs 64 per 4x4 tile, 4 per output pixel; its transforms are small matrices
# (Lavin and Gray, 2015, "Fast Algorithms for Convolutional Neural Networks"), built here by
# Toom-Cook at the points 0, +-1, +-2, +-1/2 and infinity. Larger tiles need points such as +-3
# and +-1/3: F(6x6, 5x5) was 6e-4 off Conv2D in float32, F(4x4, 5x5) 5e-6.

import math
from fractions import Fraction
from typing import Any, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

_POINTS = {2: (0, 1, -1, 2, -2), 3: (0, 1, -1, 2, -2, Fraction(1, 2)),
           4: (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))}
_R = 5  # the kernel's size


def matrices(m: int, r: int = _R, points: Sequence[Union[int, Fraction]] = ()
             ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The output, kernel and input transforms A^T [m, n], G [n, r], B^T [n, n] of F(m, r).

  y = A^T [(G g) * (B^T d)] is the correlation of d (n values) with g (r values), y (m values).
  A^T and G are Toom-Cook's (Vandermonde rows, Lagrange weights, the point at infinity last);
  B^T is solved for so that the identity holds exactly.
  """
  pts = [Fraction(p) for p in (points or _POINTS[m])]
  n = m + r - 1
  at = np.zeros((m, n))
  g = np.zeros((n, r))
  for j, p in enumerate(pts):
    scale = math.prod([p - q for q in pts if q != p])
    at[:, j] = [float(p ** i) for i in range(m)]
    g[j] = [float(p ** k / scale) for k in range(r)]
  at[m - 1, n - 1] = g[n - 1, r - 1] = 1.0
  # Output i's coefficient of g[k] * d[tap] must be 1 where tap == i + k, else 0.
  system = np.stack([at[i] * g[:, k] for i in range(m) for k in range(r)])
  want = np.array([[float(tap == i + k) for tap in range(n)]
                   for i in range(m) for k in range(r)])
  bt = np.linalg.lstsq(system, want, rcond=None)[0]
  if not np.allclose(system @ bt, want, atol=1e-9):
    raise ValueError(f"the points {points} give no Winograd algorithm F({m}, {r})")
  return at, g, bt


def _in_band(bt: np.ndarray, tiles: int, m: int, size: int) -> np.ndarray:
  """[n*tiles, size]: pixel h -> tile t's j-th transformed value (row j*tiles+t), zero padded."""
  n = bt.shape[0]
  out = np.zeros((n * tiles, size), np.float32)
  for j in range(n):
    for t in range(tiles):
      for tap in range(n):
        h = m * t + tap - _R // 2
        if 0 <= h < size:
          out[j * tiles + t, h] = bt[j, tap]
  return out


def _out_band(at: np.ndarray, tiles: int, m: int, size: int) -> np.ndarray:
  """[size, n*tiles]: output pixel m*t+a from tile t's products (columns j*tiles+t), cropped."""
  out = np.zeros((size, at.shape[1] * tiles), np.float32)
  for t in range(tiles):
    for a in range(m):
      if m * t + a < size:
        out[m * t + a, t::tiles] = at[a]
  return out


# Under this many input channels the transforms cost more than the multiply-adds saved: at batch
# 100 a 1-channel 28x28 conv1 ran forward and backward 3x slower (57 against 19 ms), 32 -> 64
# channels at 14x14 1.2x faster (49 against 59 ms; AVX2 EPYC).
MIN_CHANNELS = 8


def applies(input_shape: Any, dtype: Any, kernel_size: Union[int, Sequence[int]],
            strides: Sequence[int] = (1, 1),
            padding: str = "same", dilation: Sequence[int] = (1, 1),
            data_format: str = "channels_last") -> bool:
  """Whether conv5x5 computes this convolution, and is worth it.

  Args:
    input_shape: the NHWC input's static shape (a TensorShape or a sequence).
    dtype: the input's dtype (float32 only: bf16 would lose the transforms' precision).
    kernel_size: an int or (height, width).
    strides, padding, dilation, data_format: the convolution's, as Keras layers name them.

  Returns:
    True for a float32, 'same', stride-1, undilated 5x5 convolution of a square image of
    known size with MIN_CHANNELS or more channels, channels last.
  """
  shape = tf.TensorShape(input_shape)
  size = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
  return (tf.as_dtype(dtype) == tf.float32 and data_format == "channels_last"
          and str(padding).lower() == "same" and size == (_R, _R)
          and tuple(strides) == (1, 1) and tuple(dilation) == (1, 1)
          and shape.rank == 4 and shape[1] is not None and shape[1] == shape[2]
          and shape[3] is not None and shape[3] >= MIN_CHANNELS)


def conv5x5(x: tf.Tensor, w: tf.Tensor, m: int = 4) -> tf.Tensor:
  """tf.nn.conv2d(x, w, 1, "SAME") for square NHWC x and a 5x5 kernel w, by F(m x m, 5 x 5).

  Every step is a matmul, so TensorFlow's gradients are Winograd's too. Padding and cropping
  sit in banded transform matrices (no pad or slice to differentiate), and the batched matmul
  broadcasts the kernel over one tile axis, so the only transposes move the small input and
  output (not the 64-point transformed tensors, about 3x larger).
  """
  at, g, bt = matrices(m)
  size, ci, co = x.shape[1], x.shape[3], w.shape[3]
  n, tiles = m + _R - 1, -(-size // m)
  batch = tf.shape(x)[0]
  b_in = tf.constant(_in_band(bt, tiles, m, size))                  # [(j,t), pixel]
  u = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [size, -1])         # [H, W*B*C]
  u = tf.reshape(tf.matmul(b_in, u), [n * tiles, size, -1])         # [(j1,t1), W, B*C]
  u = tf.matmul(b_in, u)                                            # [(j1,t1), (j2,t2), B*C]
  g = tf.constant(g, tf.float32)
  kernel = tf.reshape(tf.matmul(g, tf.reshape(w, [_R, -1])), [n, _R, -1])
  kernel = tf.reshape(tf.matmul(g, kernel), [n, 1, n, ci, co])     # [j1, 1, j2, C, Co]
  # One matmul per (j1, t1, j2), the kernel broadcast over t1: no transpose of u.
  prod = tf.matmul(tf.reshape(u, [n, tiles, n, -1, ci]), kernel)    # [j1, t1, j2, t2*B, Co]
  a_out = tf.constant(_out_band(at, tiles, m, size))                # [pixel, (j,t)]
  y = tf.matmul(a_out, tf.reshape(prod, [n * tiles, -1]))          # [h, (j2,t2)*B*Co]
  y = tf.matmul(a_out, tf.reshape(y, [size, n * tiles, -1]))       # [h, w, B*Co]
  return tf.transpose(tf.reshape(y, [size, size, batch, co]), [2, 0, 1, 3])
