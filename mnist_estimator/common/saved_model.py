"""What an export is named and keeps: signature and input keys, versions, class names, metadata.

Loading one is mnist_estimator.runtime's.
"""

import json
import os
from typing import Any, Dict, List, Mapping, Optional

from mnist_estimator.common.errors import UsageError

PB = "saved_model.pb"
# Signature and receiver names of every export (head and estimator/export write them).
SERVING_DEFAULT = "serving_default"
IMAGES_KEY = "images"        # receiver tensor of the default signatures
EXAMPLES_KEY = "examples"    # alternative receiver: serialized tf.Example with float feature "x"
SEQUENCES_KEY = "sequences"  # receiver of a sequence data set (weather): raw values, unscaled
IMAGE_BYTES_KEY = "image_bytes"  # alternative receiver: encoded images (PNG, JPEG, ...)
CLASS_NAMES_FILE = "class_names.txt"  # in assets.extra: one class name a line
# In assets.extra: what the training data meant (run/contract.py's data record): class
# names, image shape, the decoding the image_bytes signature repeats, the border brightness.
METADATA_FILE = "mnist_estimator.json"


def class_names(path: str) -> Optional[List[str]]:
  """The class names an export keeps in assets.extra, or None (digits: "0".."9")."""
  file = os.path.join(path, "assets.extra", CLASS_NAMES_FILE)
  try:
    with open(file, encoding="utf-8") as f:
      return [line.rstrip("\n") for line in f if line.strip()]
  except OSError:
    return None


def metadata(path: str) -> Dict[str, Any]:
  """The data record an export keeps in assets.extra ({} for an older export)."""
  try:
    with open(os.path.join(path, "assets.extra", METADATA_FILE), encoding="utf-8") as f:
      found = json.load(f)
    return found if isinstance(found, dict) else {}
  except (OSError, ValueError):
    return {}


def image_input_key(inputs: Mapping[str, Any]) -> Optional[str]:
  """The input a serving signature takes images on: "images", else its only input, else None.

  One choice for predict, the exports' check and the server's page.
  """
  if IMAGES_KEY in inputs:
    return IMAGES_KEY
  return next(iter(inputs)) if len(inputs) == 1 else None


def listdir(path: str) -> List[str]:
  """os.listdir, or [] where the folder is missing or unreadable."""
  try:
    return os.listdir(path)
  except OSError:
    return []


def versions(base: str) -> Dict[int, str]:
  """{version: path} of the numbered SavedModels under base (TF Serving's base path).

  A base that is itself a SavedModel is one version: its folder name if numeric, else 1.
  """
  if os.path.isfile(os.path.join(base, PB)):
    name = os.path.basename(os.path.normpath(base))
    return {int(name) if name.isdigit() else 1: base}
  return {int(n): os.path.join(base, n) for n in listdir(base)
          if n.isdigit() and os.path.isfile(os.path.join(base, n, PB))}


def newest(base: str) -> str:
  """The newest SavedModel under base (or base itself if it is one).

  Raises:
    UsageError: there is none.
  """
  found = versions(base)
  if not found:
    raise UsageError(f"no SavedModel in {base}; export one with --export_dir "
                     "(or --mode=export) first")
  return found[max(found)]
