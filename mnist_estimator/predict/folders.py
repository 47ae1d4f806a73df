"""Folders given to predict: their image files, and labels from class folders' names."""

import collections
import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import decode as decode_lib

# --folder_labels: auto takes a folder's subfolders as classes when one is named as a class
# of the model; yes insists on class folders; no labels nothing (folders are just places).
LABELS_CHOICES = ("auto", "yes", "no")


@dataclasses.dataclass
class Inputs:
  """What to predict, folders expanded.

  Attributes:
    paths: the files, in order: each argument's, a folder's sorted by path.
    labels: int64 [len(paths)] class ids from class folders' names, or None.
    ignored: extension -> count of the files in folders that are no images.
    labelled_by: the folders whose class folders gave the labels.
  """
  paths: List[str]
  labels: Optional[np.ndarray]
  ignored: "collections.Counter[str]"
  labelled_by: List[str]

  def ignored_text(self) -> str:
    """The ignored files by extension, e.g. ".txt 2, .csv 1"."""
    return ", ".join(f"{ext} {n}" for ext, n in sorted(self.ignored.items()))


def _entries(folder: str) -> List["os.DirEntry[str]"]:
  """The folder's visible entries, sorted (names starting with "." are hidden)."""
  try:
    return sorted((e for e in os.scandir(folder) if not e.name.startswith(".")),
                  key=lambda e: e.name)
  except OSError as e:
    raise UsageError(f"cannot read the folder {folder} ({e.strerror}); check the path") from None


def _images(folder: str, ignored: "collections.Counter[str]", seen: Set[str]) -> List[str]:
  """The image files under folder (subfolders too, each real folder once), sorted."""
  real = os.path.realpath(folder)
  if real in seen:  # a symlink back up the tree
    return []
  seen.add(real)
  found: List[str] = []
  for entry in _entries(folder):
    if entry.is_dir():
      found += _images(entry.path, ignored, seen)
    elif os.path.splitext(entry.name)[1].lower() in decode_lib.EXTENSIONS:
      found.append(entry.path)
    else:
      ignored[os.path.splitext(entry.name)[1].lower() or "no extension"] += 1
  return found


def _class_folders(folder: str, entries: Sequence["os.DirEntry[str]"], class_names: Sequence[str],
                   folder_labels: str) -> Optional[Dict[int, str]]:
  """The folder's subfolders as {class id: folder}, or None where they are no classes.

  Raises:
    UsageError: a subfolder that is not a class (or, for yes, no subfolders), an image
      beside the class folders.
  """
  dirs = [e for e in entries if e.is_dir()]
  named = [e for e in dirs if e.name in class_names]
  if folder_labels == "no" or (folder_labels == "auto" and not named):
    return None
  shown = ", ".join(class_names)
  if not dirs:
    raise UsageError(f"{folder} has no class subfolders, which --folder_labels=yes needs "
                     f"(the model's classes: {shown}); pass --folder_labels=auto or no")
  odd = next((e for e in dirs if e.name not in class_names), None)
  if odd is not None and named:
    raise UsageError(f"{odd.path} is not a class of the model (its classes: {shown}), though "
                     f"{named[0].name}/ beside it is; rename or move it, or pass "
                     "--folder_labels=no to predict without labels")
  if odd is not None:
    raise UsageError(f"{odd.path} is not a class of the model (its classes: {shown}); with "
                     "--folder_labels=yes every subfolder is a class: rename it, or pass "
                     "--folder_labels=auto or no")
  loose = next((e for e in entries if not e.is_dir() and
                os.path.splitext(e.name)[1].lower() in decode_lib.EXTENSIONS), None)
  if loose is not None:
    raise UsageError(f"{loose.path} is beside the class folders of {folder}, so it has no "
                     "label; move it into its class folder, or pass --folder_labels=no")
  return {class_names.index(e.name): e.path for e in dirs}


def _folder(folder: str, class_names: Sequence[str], folder_labels: str,
            ignored: "collections.Counter[str]") -> Tuple[List[str], Optional[List[int]]]:
  """(paths, labels or None) of one folder argument."""
  entries = _entries(folder)
  classes = _class_folders(folder, entries, class_names, folder_labels)
  if classes is None:
    paths, labels = _images(folder, ignored, set()), None
  else:
    parts = [(cls, _images(path, ignored, set())) for cls, path in sorted(classes.items())]
    paths = [path for _, found in parts for path in found]
    labels = [cls for cls, found in parts for _ in found]
  if not paths:
    raise UsageError(f"{folder} holds no {decode_lib.FORMATS} images; pass a folder of "
                     "images (class subfolders give labels)")
  return paths, labels


def expand(args: Sequence[str], class_names: Sequence[str],
           folder_labels: str = "auto") -> Inputs:
  """The files to predict: files as they are, folders walked; labels from class folders.

  Args:
    args: the command line's files and folders.
    class_names: the model's class names, in class-id order.
    folder_labels: one of LABELS_CHOICES.

  Returns:
    Inputs; labels only when every file is in a class folder.

  Raises:
    UsageError: as _class_folders; a folder without images; class folders beside files
      without labels.
  """
  if folder_labels not in LABELS_CHOICES:
    raise UsageError(f"unknown --folder_labels={folder_labels}; choose from: "
                     f"{', '.join(LABELS_CHOICES)}")
  names = [str(name) for name in class_names]
  paths: List[str] = []
  labels: List[int] = []
  ignored: "collections.Counter[str]" = collections.Counter()
  by: List[str] = []
  unlabelled: Optional[str] = None
  for arg in args:
    if not os.path.isdir(arg):
      paths.append(arg)
      unlabelled = unlabelled or arg
      continue
    found, found_labels = _folder(arg, names, folder_labels, ignored)
    paths += found
    if found_labels is None:
      unlabelled = unlabelled or arg
    else:
      labels += found_labels
      by.append(arg)
  if by and unlabelled:
    raise UsageError(f"the class folders of {by[0]} label its images but {unlabelled} has "
                     "no labels; predict them in separate commands, or pass "
                     "--folder_labels=no")
  return Inputs(paths, np.asarray(labels, np.int64) if by else None, ignored, by)
