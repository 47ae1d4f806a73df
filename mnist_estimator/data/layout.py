"""A folder of your own images as Keras and torchvision read it: splits, classes, files."""

import collections
import dataclasses
import os
from typing import Counter, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import decode

TRAIN = "train"
TEST = "test"
VAL_NAMES = ("val", "validation")  # the validation set (one of them)
SPLIT_NAMES = (TEST, *VAL_NAMES)
# Files that are clearly not images: ignored (and counted). Any other file that is not an
# image by its name is looked at: one that starts like an image is refused, not skipped.
NOT_IMAGES = frozenset(
    ".txt .md .rst .json .jsonl .csv .tsv .xml .yaml .yml .toml .ini .cfg .html .htm .py "
    ".ipynb .sh .log .pdf .doc .docx .xls .xlsx .zip .tar .gz .tgz .bz2 .xz .7z .npy .npz "
    ".pkl .pickle .h5 .hdf5 .mat .db .sqlite .pt .pth .ckpt .pb .tfrecord .lnk .url .mp4 .avi "
    ".mov .mkv .mp3 .wav .flac .ogg".split())
# Images by their names that are not read here: refused (or skipped as bad), never ignored.
IMAGE_LIKE = frozenset(
    ".heic .heif .avif .jxl .jp2 .j2k .jpe .jfif .svg .ico .psd .tga .exr .hdr .raw .dng .cr2 "
    ".nef .arw .orf .rw2".split())
_READ = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "WebP": ".webp",
         "TIFF": ".tif", "PPM": ".ppm"}  # formats read, by what a file starts with
_SIGNATURES = ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
               (b"BM", "BMP"), (b"II*\0", "TIFF"), (b"MM\0*", "TIFF"), (b"8BPS", "PSD"),
               (b"\0\0\1\0", "ICO"), (b"\xff\x0a", "JPEG XL"), (b"\0\0\0\x0cjP", "JPEG 2000"))


@dataclasses.dataclass
class Split:
  """One split's folder: {class: [image paths]}, files ignored, images that cannot be read."""
  folder: str
  classes: Dict[str, List[str]]
  ignored: Counter[str]  # extension -> count of files that are not images
  bad: List[Tuple[str, str]]  # [(path, reason)]: images by their look that are not read here


@dataclasses.dataclass
class Layout:
  """The folder's splits: train, test and val (None: held out of train)."""
  root: str
  train: Split
  test: Optional[Split]
  val: Optional[Split]
  loose: Counter[str]  # files beside the split folders, ignored: extension -> count

  def describe(self, held_out: float) -> str:
    """Which folder became which split, e.g. "train: train/, test: test/, validation: val/"."""
    name = lambda split: os.path.relpath(split.folder, self.root) + "/"
    train = "class folders" if self.train.folder == self.root else name(self.train)
    test = name(self.test) if self.test else f"{held_out:.0%} of each class held out"
    val = f", validation: {name(self.val)}" if self.val else ""
    return f"train: {train}, test: {test}{val}"

  @property
  def ignored(self) -> Counter[str]:
    return sum((split.ignored for split in (self.train, self.test, self.val) if split),
               self.loose)


def _entries(folder: str) -> List[os.DirEntry[str]]:
  """The folder's visible entries (names starting with "." are hidden: ._x.png, .DS_Store)."""
  try:
    return sorted((e for e in os.scandir(folder) if not e.name.startswith(".")),
                  key=lambda e: e.name)
  except OSError as e:
    raise UsageError(f"cannot read the folder {folder} ({e.strerror}); pass "
                     "--dataset=folder:DIR with class subfolders of images") from None


def _dirs(folder: str) -> List[os.DirEntry[str]]:
  return [e for e in _entries(folder) if e.is_dir()]


def _sniff(path: str) -> Optional[str]:
  """The image format a file starts with, or None."""
  try:
    with open(path, "rb") as f:
      head = f.read(16)
  except OSError:
    return None
  if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
    return "WebP"
  if head[4:8] == b"ftyp":
    return "HEIF/AVIF"
  if len(head) > 2 and head[:1] == b"P" and head[1:2] in b"1234567" and head[2:3].isspace():
    return "PPM"
  return next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)


def _file(path: str, split: Split) -> Optional[bool]:
  """Sorts one file of a class folder: an image (True), ignored (None), or bad (False)."""
  extension = os.path.splitext(path)[1].lower()
  if extension in decode.EXTENSIONS:
    return True
  looks = None if extension in NOT_IMAGES else _sniff(path)
  if looks in _READ:
    split.bad.append((path, f"its bytes are {looks} but its name does not end in "
                            f"{_READ[looks]}; rename it"))
  elif looks or extension in IMAGE_LIKE:
    split.bad.append((path, f"{looks or extension[1:].upper()} images are not read here; "
                            f"convert it to {decode.FORMATS}"))
  else:
    split.ignored[extension or "no extension"] += 1
    return None
  return False


def _walk(folder: str, seen: Set[str]) -> Iterator[str]:
  """The visible files under folder, subfolders included (symlinks followed once)."""
  real = os.path.realpath(folder)
  if real in seen:
    return
  seen.add(real)
  for entry in _entries(folder):
    if entry.is_dir():
      yield from _walk(entry.path, seen)
    elif entry.is_file() or entry.is_symlink():  # a broken link is named when it is read
      yield entry.path


def read_split(folder: str, known: Optional[Sequence[str]] = None) -> Split:
  """The Split of a folder of class folders (images in their subfolders count too).

  Args:
    folder: DIR or DIR/train, DIR/test ...
    known: the training classes; a test class outside them is refused.

  Raises:
    UsageError: no class folder, an image outside the class folders, an empty class, a test
      class the training folder lacks.
  """
  split = Split(folder, {}, collections.Counter(), [])
  for entry in _entries(folder):
    if entry.is_dir():
      split.classes[entry.name] = [p for p in _walk(entry.path, set())
                                   if _file(p, split)]
    elif _file(entry.path, split) is not None:
      raise UsageError(f"{entry.path} is not in a class folder; move it into "
                       f"{os.path.join(folder, '<class>')}/ or remove it")
  if not split.classes:
    raise UsageError(f"{folder} holds no class subfolders; put each class's images in a "
                     "folder of its own (DIR/cat/*.png, DIR/dog/*.png)")
  empty = [name for name, files in split.classes.items() if not files]
  if empty:
    raise UsageError(f"the class folder {os.path.join(folder, empty[0])} holds no "
                     f"{decode.FORMATS} images; add some or remove the folder")
  unknown = sorted(set(split.classes) - set(known if known is not None else split.classes))
  if unknown:
    raise UsageError(f"{folder} has the class {unknown[0]}, which the training folder lacks; "
                     "a test class needs training images")
  return split


def _loose(root: str, entries: Iterable[os.DirEntry[str]]) -> Counter[str]:
  """Files beside the split folders: refused if images, else counted as ignored."""
  ignored: Counter[str] = collections.Counter()
  for entry in entries:
    if not entry.is_dir() and _file(entry.path, Split(root, {}, ignored, [])) is not None:
      raise UsageError(f"{entry.path} is not in a class folder; move it into "
                       f"{os.path.join(root, TRAIN, '<class>')}/ or remove it")
  return ignored


def read(root: str) -> Layout:
  """The Layout of DIR: train/ with test/ and val/ (or validation/) if there, or classes.

  Raises:
    UsageError: not a folder, folders beside train/ that are not a split, a test/ without
      train/, or as read_split.
  """
  if not os.path.isdir(root):
    raise UsageError(f"--dataset=folder:{root}: {root} is not a folder; pass a folder of "
                     "class subfolders (DIR/cat/*.png, DIR/dog/*.png)")
  entries = _entries(root)
  dirs = {e.name.lower(): e.path for e in entries if e.is_dir()}
  if TRAIN not in dirs or not _dirs(dirs[TRAIN]):
    split_like = [name for name in SPLIT_NAMES if name in dirs and _dirs(dirs[name])]
    if split_like:
      raise UsageError(f"{root} has {split_like[0]}/ with class folders but no train/; put "
                       f"the training class folders in {os.path.join(root, TRAIN)}/")
    return Layout(root, read_split(root), None, None, collections.Counter())
  others = sorted(set(dirs) - {TRAIN, *SPLIT_NAMES})
  if others:
    raise UsageError(f"{root} holds {TRAIN}/ and also {others[0]}/; keep only train/, test/ "
                     "and val/ there, or pass --dataset=folder:DIR/train")
  vals = [name for name in VAL_NAMES if name in dirs]
  if len(vals) > 1:
    raise UsageError(f"{root} holds both val/ and validation/; keep one validation folder")
  ignored = _loose(root, entries)
  train = read_split(dirs[TRAIN])
  test = read_split(dirs[TEST], list(train.classes)) if TEST in dirs else None
  val = read_split(dirs[vals[0]], list(train.classes)) if vals else None
  return Layout(root, train, test, val, ignored)
