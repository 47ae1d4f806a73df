"""Your own network by import path: `--model=mypkg.nets:small_cnn` or `--model=./nets.py:fn`.

The function is a logits function `(features, mode, params) -> logits`, which the shared
head turns into an EstimatorSpec (loss, metrics, EMA, L2, summaries, export outputs), or
a whole tf.estimator `model_fn(features, labels, mode, params[, config])`, used as it is.
The decorators below say which, and give defaults as a registry line does:

    from mnist_estimator.models import custom

    @custom.logits(optimizer="adam", learning_rate=0.001, steps=500)
    def small_cnn(features, mode, params): ...
"""

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, TypeVar

from mnist_estimator.common.errors import UsageError

if TYPE_CHECKING:  # imported where used
  import traceback

KINDS = ("logits", "model_fn")
_ATTR = "mnist_estimator_model"  # what the decorators set: {"kind": ..., "defaults": {...}}
# A model PATH:FUNCTION as `load` returns it: (function, kind, defaults, source file or None).
Loaded = Tuple[Callable[..., Any], str, Dict[str, Any], Optional[str]]
_LOADED: Dict[str, Loaded] = {}  # import path -> Loaded: each module imported once
_Fn = TypeVar("_Fn", bound=Callable[..., Any])
_T = TypeVar("_T")


def forget_if_replaced(label: str, function: Callable[..., Any]) -> None:
  """Forgets what `label` loaded if it is no longer `function` (a notebook cell run again)."""
  loaded = _LOADED.get(label)
  if loaded and loaded[0] is not function:
    del _LOADED[label]


def logits(**defaults: Any) -> Callable[[_Fn], _Fn]:
  """Marks `fn(features, mode, params) -> logits`; `defaults` as a registry line's."""
  return _mark("logits", defaults)


def model_fn(**defaults: Any) -> Callable[[_Fn], _Fn]:
  """Marks a full tf.estimator `model_fn(features, labels, mode, params[, config])`."""
  return _mark("model_fn", defaults)


def _mark(kind: str, defaults: Dict[str, Any]) -> Callable[[_Fn], _Fn]:
  def mark(fn: _Fn) -> _Fn:
    setattr(fn, _ATTR, {"kind": kind, "defaults": dict(defaults)})
    return fn
  return mark


def is_import_path(name: str) -> bool:
  """`PATH:FUNCTION`, the form of a model that is not in the registry."""
  return ":" in name


def _import(path: str, name: str) -> ModuleType:
  """The module that `path` names: a .py file (absolute or relative to the cwd) or dotted."""
  if path.endswith(".py") or os.sep in path:
    file = os.path.abspath(path)
    if not os.path.isfile(file):
      raise UsageError(f"--model={path}:{name}: there is no file {file}; pass an existing "
                       "file (./nets.py:fn) or a module on sys.path (mypkg.nets:fn)")
    module_name = f"mnist_estimator_user_{hashlib.sha1(file.encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:  # a name not ending in .py: no loader takes it
      raise UsageError(f"--model={path}:{name}: {path} is not a Python file (.py); pass "
                       f"--model=PATH.py:{name} or a dotted module (mypkg.nets:{name})")
    loader = spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    _run_user_code(lambda: loader.exec_module(module), file, f"importing {file}")
    return module
  try:
    return importlib.import_module(path)
  except ModuleNotFoundError as e:
    if e.name and not path.startswith(e.name) and not e.name.startswith(path.split(".")[0]):
      raise  # the user's module imports something missing: shown with its traceback below
    raise UsageError(f"--model={path}:{name}: no module named {path} on sys.path (cwd "
                     f"{os.getcwd()}); pass a .py file (./nets.py:{name}) or add its folder "
                     "to PYTHONPATH") from None


def _kind_of(fn: Callable[..., Any], label: str) -> str:
  """logits or model_fn, by the decorator or else by the signature's parameter names."""
  marked = getattr(fn, _ATTR, None)
  if marked:
    return marked["kind"]
  try:
    names = list(inspect.signature(fn).parameters)
  except (TypeError, ValueError):
    names = []
  if "labels" in names or len(names) in (4, 5):
    return "model_fn"
  if len(names) == 3:
    return "logits"
  raise UsageError(f"--model={label} takes ({', '.join(names)}); a model is "
                   "fn(features, mode, params) -> logits, or a model_fn(features, labels, mode, "
                   "params[, config]) -> EstimatorSpec (or mark it with @custom.logits or "
                   "@custom.model_fn)")


def load(label: str) -> Loaded:
  """(function, kind, defaults, source file or None) of `PATH:FUNCTION`, imported once.

  Raises:
    UsageError: no such module or file, no such name, not callable, a wrong signature,
      or the module fails to import (its own traceback, trimmed to its frames).
  """
  if label in _LOADED:
    return _LOADED[label]
  path, _, name = label.rpartition(":")
  if not path or not name:
    raise UsageError(f"--model={label} is not PATH:FUNCTION; e.g. --model=./nets.py:small_cnn "
                     "or --model=mypkg.nets:small_cnn")
  module = _import(path, name)
  if not hasattr(module, name):
    found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                   and getattr(v, "__module__", None) == module.__name__)
    raise UsageError(f"--model={label}: {path} has no {name}; it defines: "
                     f"{', '.join(found) or 'no functions'}")
  fn = getattr(module, name)
  if not callable(fn):
    raise UsageError(f"--model={label}: {name} is a {type(fn).__name__}, not a function")
  kind = _kind_of(fn, label)
  defaults = dict((getattr(fn, _ATTR, None) or {}).get("defaults") or
                  getattr(fn, "defaults", None) or {})
  _LOADED[label] = (fn, kind, defaults, getattr(module, "__file__", None))
  return _LOADED[label]


def source_sha256(file: Optional[str]) -> Optional[str]:
  """The SHA-256 of a model's source file (kept in the model_dir record), or None."""
  if not file or not os.path.isfile(file):
    return None
  with open(file, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def _user_frames(tb: Optional[TracebackType],
                 file: Optional[str] = None) -> List["traceback.FrameSummary"]:
  """The traceback's frames in the user's code: not this package's, not TensorFlow's."""
  import traceback  # pylint: disable=g-import-not-at-top
  package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  frames = []
  for frame in traceback.extract_tb(tb):
    name = os.path.abspath(frame.filename)
    if (file and name == file) or not (name.startswith(package) or "site-packages" in name
                                       or "/lib/python" in name or name.startswith("<frozen")):
      frames.append(frame)
  return frames


class UserCodeError(UsageError):
  """The user's model raised: `details` holds their frames, printed above the error line."""

  def __init__(self, message: str, details: str) -> None:
    super().__init__(message)
    self.details = details


def _run_user_code(call: Callable[[], _T], file: Optional[str], doing: str) -> _T:
  try:
    return call()
  except UsageError:
    raise
  except Exception as e:  # pylint: disable=broad-except  # the user's code: any error
    raise user_error(e, doing, file) from e


def user_error(error: BaseException, doing: str, file: Optional[str] = None) -> UserCodeError:
  """A UserCodeError for an exception of the user's code: their frames and the cause."""
  import traceback  # pylint: disable=g-import-not-at-top
  frames = _user_frames(error.__traceback__, file)
  details = "".join(traceback.format_list(frames)) if frames else ""
  cause = f"{type(error).__name__}: {error}".splitlines()[0]
  return UserCodeError(f"{doing} raised {cause}; fix the model (its frames are above; "
                       "--verbose shows the whole traceback)", details)
