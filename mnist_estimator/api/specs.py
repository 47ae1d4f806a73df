"""Settings -> RunSpec as the command line builds it: names, list values, the flags' checks."""

import difflib
import sys
from typing import Any, Dict, Sequence

from mnist_estimator.common.errors import UsageError
from mnist_estimator.models import custom
from mnist_estimator.run import spec as spec_lib


def make_spec(**settings: Any) -> spec_lib.RunSpec:
  """The RunSpec of `settings` as the CLI would build it from the same flags.

  None means "not given" (the model's or the field's default); a list setting also takes a
  comma string ("128,32"), as its flag does.

  Raises:
    UsageError: an unknown name (with the close ones), or a value the flag would refuse.
  """
  fields = spec_lib.field_names()
  unknown = [name for name in settings if name not in fields]
  if unknown:
    raise UsageError("; ".join(_unknown(name, fields) for name in unknown))
  model = model_label(settings.pop("model", None) or spec_lib.DEFAULT_MODEL)
  values = {name: _value(name, value) for name, value in settings.items() if value is not None}
  for name, value in [("model", model), *values.items()]:
    _check(name, value)
  return spec_lib.RunSpec.for_model(model, **values)


def _unknown(name: str, fields: Sequence[str]) -> str:
  close = difflib.get_close_matches(name, fields, n=3, cutoff=0.6)
  hint = (f"did you mean {' or '.join(close)}?" if close
          else "mnist_estimator.settings() lists them all")
  return (f"unknown setting {name!r}: {hint} (the settings are the command line's flag "
          "names)")


def only_mode(settings: Dict[str, Any], mode: str) -> str:
  """The mode of a function that does one (`mode`); a mode in settings must be that one.

  Raises:
    UsageError: settings name another mode.
  """
  given = settings.pop("mode", mode)
  if given != mode:
    raise UsageError(f"{mode}() runs mode {mode!r}, not {given!r}; run(mode={given!r}) does")
  return mode


def _value(name: str, value: Any) -> Any:
  """A list setting given as one comma string becomes its items, as its flag parses it."""
  option = spec_lib.option(name)
  default = (option.base if option.model_defaulted
             else spec_lib.RunSpec.__dataclass_fields__[name].default)
  if isinstance(default, tuple) and isinstance(value, str):
    return [item.strip() for item in value.split(",") if item.strip()]
  return value


def _check(name: str, value: Any) -> None:
  """What the flag checks: choices, bounds, the field's validator."""
  option = spec_lib.option(name)
  if option.choices and value not in option.choices:
    raise UsageError(f"{name}={value!r} is not one of: {', '.join(map(str, option.choices))}")
  for bound, low in ((option.lower, True), (option.upper, False)):
    if bound is not None and isinstance(value, (int, float)) and (
        value < bound if low else value > bound):
      raise UsageError(f"{name}={value!r} must be {'>=' if low else '<='} {bound}")
  if option.validator:
    check, message = option.validator
    if not check(value):
      raise UsageError(f"{name}={value!r}: {message}")


def model_label(model: Any) -> str:
  """The --model value of `model`: a string as it is; a function by its module:name.

  The function is then imported by that path (models/custom.py), as --model=PATH:FUNCTION.

  Raises:
    UsageError: not a function that its module holds by its name.
  """
  if isinstance(model, str):
    return model
  module_name, name = getattr(model, "__module__", None), getattr(model, "__qualname__", "")
  module = sys.modules.get(module_name or "")
  if not callable(model) or module is None or getattr(module, name, None) is not model:
    raise UsageError(f"model={model!r}: give a model name, PATH:FUNCTION, or a function "
                     "defined at the top level of a module or notebook cell (not a lambda, "
                     "method or nested function)")
  label = f"{module_name}:{name}"
  # A notebook cell run again defines a new function under the same name: use that one.
  custom.forget_if_replaced(label, model)
  return label
