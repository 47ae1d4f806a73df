"""Draw trained weights as pictures: conv filters, and per-class pixel weight maps."""

import math
import os
import re
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from mnist_estimator.common.errors import UsageError
from mnist_estimator.artifacts.report import pyplot

_DPI = 100
_MAX_INCHES = 14.0  # keeps 64-filter or 500-unit grids at a sane file and screen size
_MAX_LABELS = 144  # beyond this many tiles the numbers would only hide the pictures


def _columns(n: int, min_cols: int = 1) -> int:
  """Columns of a near-square grid for n pictures, at least min_cols (if n allows)."""
  return min(n, max(min_cols, math.ceil(math.sqrt(n))))


def _mosaic(
    tiles: np.ndarray, cols: int, labels: Optional[Sequence[str]],
) -> Tuple[np.ndarray, List[Tuple[int, int]], Tuple[int, int]]:
  """Lays tiles [n, h, w] (or RGB [n, h, w, 3]) out in a grid with gaps and label bands.

  Gaps are NaN (blank under a colormap), or white for RGB tiles.

  Returns:
    (canvas, corners, (slot_h, slot_w)): the canvas, each tile's top-left (y, x), and the
    size of one grid slot in pixels.
  """
  n, h, w = tiles.shape[:3]
  gap = max(1, round(0.15 * w))
  top = max(gap, round(0.3 * h)) if labels else gap
  slot_h, slot_w = h + top, w + gap
  rows = math.ceil(n / cols)
  canvas = np.full((rows * slot_h, cols * slot_w - gap, *tiles.shape[3:]),
                   1.0 if tiles.ndim == 4 else np.nan)
  corners: List[Tuple[int, int]] = []
  for i, tile in enumerate(tiles):
    y, x = (i // cols) * slot_h + top, (i % cols) * slot_w
    canvas[y:y + h, x:x + w] = tile
    corners.append((y, x))
  return canvas, corners, (slot_h, slot_w)


def _tile_figure(tiles: np.ndarray, cols: int, cell: float, labels: Optional[Sequence[str]],
                 colorbar: bool = False, **imshow_args: Any) -> Tuple[Any, Any]:
  """Draws tiles in ONE axes (one Axes per tile takes ~20 ms each: 64 filters took seconds).

  Args:
    tiles: float array [n, h, w].
    cols: grid columns.
    cell: wanted width of one grid slot in inches; shrunk to fit _MAX_INCHES.
    labels: n strings drawn above the tiles, or None.
    colorbar: whether to add a colorbar.
    **imshow_args: cmap, vmin, vmax for imshow.

  Returns:
    (fig, ax).
  """
  plt = pyplot()
  from matplotlib.collections import PatchCollection  # pylint: disable=g-import-not-at-top
  from matplotlib.patches import Rectangle  # pylint: disable=g-import-not-at-top
  if len(tiles) > _MAX_LABELS:
    labels = None
  canvas, corners, (slot_h, slot_w) = _mosaic(tiles, cols, labels)
  extra = 1.2 if colorbar else 0.0
  cell = min(cell, (_MAX_INCHES - extra) / cols, _MAX_INCHES * slot_w / canvas.shape[0])
  inch = cell / slot_w  # inches per canvas pixel
  # At least 6 inches wide so a two-line title fits over a grid of a few filters.
  fig, ax = plt.subplots(figsize=(max(canvas.shape[1] * inch + extra, 6.0),
                                  canvas.shape[0] * inch + 0.8), dpi=_DPI, layout="constrained")
  if canvas.ndim == 3:  # RGB tiles in 0..1: no colormap
    image = ax.imshow(np.clip(canvas, 0.0, 1.0), interpolation="nearest")
  else:
    cmap = plt.get_cmap(imshow_args.pop("cmap")).with_extremes(bad=(0, 0, 0, 0))  # blank gaps
    image = ax.imshow(canvas, cmap=cmap, interpolation="nearest", **imshow_args)
  h, w = tiles.shape[1:3]
  # Outlines, since a map that is ~0 at its edges (all MNIST maps are) has no visible border.
  outlines = PatchCollection([Rectangle((x - 0.5, y - 0.5), w, h) for y, x in corners],
                             facecolor="none", edgecolor="black", linewidth=0.6)
  outlines.set_clip_on(False)  # the last row and column lie on the axes' edge
  ax.add_collection(outlines)
  if labels is not None:
    size = min(9.0, 0.6 * (slot_h - h) * inch * 72)  # 60% of the band above a tile, in points
    for (y, x), text in zip(corners, labels):
      ax.text(x + w / 2 - 0.5, y - 0.8, text, ha="center", va="bottom", fontsize=size)
  ax.set_axis_off()
  if colorbar:
    fig.colorbar(image, ax=ax, shrink=0.9 if canvas.shape[0] < 3 * slot_h else 0.5,
                 anchor=(0.0, 1.0), label="weight")
  # The equal-aspect grid rarely fills its box: keep it (and the colorbar) under the title; the
  # slack below is trimmed on saving. After colorbar(), which resets the anchor.
  ax.set_anchor("N")
  return fig, ax


def _save(fig: Any, path: str) -> str:
  """Saves and closes the figure (closing frees it: repeated calls must not leak figures)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  # "tight": trims the margin an equal-aspect grid leaves in a figure of another shape.
  fig.savefig(path, dpi=_DPI, bbox_inches="tight", pad_inches=0.1)
  pyplot().close(fig)
  return path


def _conv_caption(shape: Sequence[int]) -> str:
  kh, kw, c_in, n = shape
  if c_in == 3:
    return f"{n} filters {kh}x{kw} over RGB (each scaled alone: the colour it responds to)"
  return f"{n} filters {kh}x{kw}, input channel 0 of {c_in} (each scaled alone, white = high)"


def _class_caption(image_shape: Sequence[int], outputs: Optional[int] = None,
                   n_classes: Optional[int] = None) -> str:
  """What the tiles are: classes (a linear model) or hidden units (a first dense layer)."""
  what = ("class" if outputs is None or outputs == n_classes
          else f"of the {outputs} hidden units")
  if len(image_shape) == 3 and image_shape[2] == 3:
    return (f"pixel weights of each {what}, {image_shape[0]}x{image_shape[1]} RGB: each "
            "channel's weight as its colour, mid-gray = 0")
  return (f"pixel weights of each {what}, {image_shape[0]}x{image_shape[1]}: "
          "red raises it, blue lowers it")


def conv_filters_png(kernel: npt.ArrayLike, path: str, title: Optional[str] = None) -> str:
  """Draws each output filter of a conv kernel (its first input channel) in a grid.

  Args:
    kernel: float array [kh, kw, in_channels, out_channels], a conv layer's `kernel`.
    path: the .png to write; its directory is created if needed.
    title: the figure title; default describes the kernel.

  Returns:
    path.

  Raises:
    UsageError: the kernel is not 4-D.
  """
  kernel = np.asarray(kernel, dtype=np.float64)
  if kernel.ndim != 4:
    raise UsageError(f"a conv kernel must be 4-D [height, width, in, out] but has shape "
                     f"{list(kernel.shape)}; pass a conv layer's kernel variable")
  rgb = kernel.shape[2] == 3  # a first layer over RGB images: each filter in colour
  filters = np.moveaxis(kernel if rgb else kernel[:, :, 0, :], -1, 0)  # [out, kh, kw(, 3)]
  # Each filter scaled to [0, 1] on its own, as the book's per-filter plt.pcolor does, so weak
  # filters still show their shape. (imshow, not pcolor: pcolor puts row 0 at the bottom.)
  axes = tuple(range(1, filters.ndim))
  low = filters.min(axis=axes, keepdims=True)
  span = filters.max(axis=axes, keepdims=True) - low
  filters = np.where(span > 0, (filters - low) / np.where(span > 0, span, 1.0), 0.5)
  n = len(filters)
  fig, _ = _tile_figure(filters, _columns(n), cell=1.2, labels=[str(i) for i in range(n)],
                        cmap="gray", vmin=0.0, vmax=1.0)
  fig.suptitle(title or _conv_caption(kernel.shape), fontsize=10)
  return _save(fig, path)


def class_maps_png(kernel: npt.ArrayLike, image_shape: Sequence[int], path: str,
                   title: Optional[str] = None,
                   class_names: Optional[Sequence[str]] = None) -> str:
  """Draws, per class, the weight of every pixel (channel 0) of a pixels-to-classes kernel.

  Args:
    kernel: float array [H*W*C, n_classes], e.g. the linear model's `logits/kernel`.
    image_shape: (H, W) or (H, W, C), the shape the input pixels were flattened from.
    path: the .png to write; its directory is created if needed.
    title: the figure title; default describes the kernel.
    class_names: optional n_classes names for the subplot titles.

  Returns:
    path.

  Raises:
    UsageError: the kernel's shape does not fit image_shape, or the class names do not fit it.
  """
  kernel = np.asarray(kernel, dtype=np.float64)
  image_shape = tuple(int(d) for d in image_shape)
  pixels = int(np.prod(image_shape))
  if kernel.ndim != 2 or kernel.shape[0] != pixels:
    raise UsageError(f"kernel of shape {list(kernel.shape)} does not map images of shape "
                     f"{list(image_shape)} ({pixels} pixels) to classes; it needs shape "
                     f"[{pixels}, n_classes]: pass the first dense layer's kernel and the data "
                     "set's image shape")
  n = kernel.shape[1]
  if class_names is not None and len(class_names) != n:
    raise UsageError(f"{len(class_names)} class names were given for a kernel of {n} classes; "
                     f"give exactly {n} names")
  # Same C-order flattening as layers.flat_input: pixel (h, w, c) is row (h * W + w) * C + c.
  maps = kernel.T.reshape((n,) + image_shape + ((1,) if len(image_shape) == 2 else ()))
  rgb = maps.shape[-1] == 3
  maps = maps if rgb else maps[..., 0]
  # One symmetric scale for all classes, so white is 0 and classes compare by colour.
  # NaN/inf weights (a diverged run) are left out of the scale rather than break it.
  limit = float(np.abs(maps[np.isfinite(maps)]).max(initial=0.0)) or 1.0
  labels = [str(i) if class_names is None else f"{i} {class_names[i]}" for i in range(n)]
  if rgb:  # each channel's weight as that colour's intensity: mid-gray is 0
    fig, _ = _tile_figure((np.nan_to_num(maps) / limit + 1.0) / 2.0, _columns(n, min_cols=5),
                          cell=1.8, labels=labels)
  else:
    fig, _ = _tile_figure(maps, _columns(n, min_cols=5), cell=1.8, labels=labels,
                          colorbar=True, cmap="RdBu_r", vmin=-limit, vmax=limit)
  fig.suptitle(title or _class_caption(image_shape), fontsize=10)
  return _save(fig, path)


def _drawer(array: np.ndarray, pixels: int) -> Optional[str]:
  """Which picture an array makes: "conv", "classes" or None (biases, deeper dense layers)."""
  if array.ndim == 4:
    return "conv"
  if array.ndim == 2 and array.shape[0] == pixels:
    return "classes"
  return None


def draw(named_arrays: Mapping[str, npt.ArrayLike], image_shape: Sequence[int], out_dir: str,
         pattern: Optional[str] = None, n_classes: Optional[int] = None) -> List[str]:
  """Draws every drawable variable whose name matches pattern into out_dir.

  4-D arrays are drawn as conv filters, 2-D arrays with prod(image_shape) rows as per-class
  pixel maps; others (biases, deeper dense layers) are skipped.

  Args:
    named_arrays: dict of variable name -> numpy array.
    image_shape: (H, W, C) of the model's input images.
    out_dir: output directory, created if needed.
    pattern: regular expression; only names it matches (re.search) are drawn. None = all.
    n_classes: the model's classes: a [pixels, n] kernel with another n is a hidden layer.

  Returns:
    The written paths, sorted; each file is the name with "/" replaced by "__", plus ".png".

  Raises:
    UsageError: a bad pattern, or no drawable variable matches it.
  """
  try:
    regex = re.compile(pattern or "")
  except re.error as e:
    raise UsageError(f"weights pattern {pattern!r} is not a regular expression ({e}); "
                     "fix it, e.g. 'conv1/kernel|logits/kernel'") from None
  pixels = int(np.prod(image_shape))
  arrays = {name: np.asarray(value) for name, value in named_arrays.items()}
  drawable = sorted(name for name, array in arrays.items() if _drawer(array, pixels))
  chosen = [name for name in drawable if regex.search(name)]
  if not chosen:
    if not drawable:
      raise UsageError(f"none of the variables {', '.join(sorted(arrays)) or '(none)'} can be "
                       f"drawn: only 4-D conv kernels and [{pixels}, n] first-layer kernels can; "
                       "train a model with such a layer")
    raise UsageError(f"no drawable variable matches {pattern!r}; these can be drawn: "
                     f"{', '.join(drawable)}")
  os.makedirs(out_dir, exist_ok=True)
  paths: List[str] = []
  for name in chosen:
    path = os.path.join(out_dir, name.replace("/", "__") + ".png")
    array, heading = arrays[name], f"{name} {list(arrays[name].shape)}"
    if _drawer(array, pixels) == "conv":
      paths.append(conv_filters_png(array, path, f"{heading}\n{_conv_caption(array.shape)}"))
    else:
      caption = _class_caption(image_shape, array.shape[1], n_classes)
      paths.append(class_maps_png(array, image_shape, path, f"{heading}\n{caption}"))
  return sorted(paths)
