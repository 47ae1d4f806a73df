"""main's flags, made from the RunSpec fields; flags (or a flagfile) -> RunSpec; --helpshort."""

import collections.abc
import sys
import textwrap
import typing
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from absl import flags

from mnist_estimator.common import cli
from mnist_estimator.common.errors import UsageError
from mnist_estimator.run import spec as spec_lib

FLAGS = flags.FLAGS
# The two flags of every command line (common/cli.py), last in --helpshort.
OUTPUT_GROUP = "output"


def _kind(name: str) -> str:
  """The absl DEFINE for a RunSpec field, from its type (Optional unwrapped)."""
  hint = typing.get_type_hints(spec_lib.RunSpec)[name]
  if typing.get_origin(hint) is typing.Union:  # Optional[X]
    hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
  if typing.get_origin(hint) is collections.abc.Sequence:
    return "list"
  return {bool: "bool", int: "integer", float: "float", str: "string"}[hint]


def _define(name: str, flag_values: flags.FlagValues) -> None:
  """Declares field `name` as a flag: its default (None if model-defaulted), help, bounds."""
  option = spec_lib.option(name)
  field = spec_lib.RunSpec.__dataclass_fields__[name]
  default: Any = None if option.model_defaulted else field.default
  if name == "model":
    default = spec_lib.DEFAULT_MODEL  # RunSpec itself always names its model
  help_text = option.help + (" (model default)" if option.model_defaulted else "")
  kind = "enum" if option.choices else _kind(name)
  kwargs: Dict[str, Any] = {"flag_values": flag_values}
  if kind in ("integer", "float"):
    kwargs.update(lower_bound=option.lower, upper_bound=option.upper)
  if kind == "list" and default is not None:
    default = [str(item) for item in default]
  if kind == "enum":
    flags.DEFINE_enum(name, default, list(option.choices or ()), help_text, **kwargs)
  else:
    getattr(flags, f"DEFINE_{kind}")(name, default, help_text, **kwargs)
  if option.validator:
    check, message = option.validator
    flags.register_validator(name, _own_message(check), message=message,
                             flag_values=flag_values)


def _own_message(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
  """A validator whose UsageError (a precise reason) is absl's message, not the generic one."""
  def validate(value: Any) -> bool:
    try:
      return check(value)
    except UsageError as e:
      raise flags.ValidationError(str(e)) from None
  return validate


def define_flags(flag_values: flags.FlagValues = FLAGS,
                 names: Optional[Sequence[str]] = None) -> None:
  """Declares a flag per RunSpec field, and --verbose, on `flag_values` (safe to call again).

  Args:
    flag_values: where (absl's FLAGS by default).
    names: only these fields (a tool's subset, e.g. dataset and data_dir); default all.
  """
  for name in names or spec_lib.field_names():
    if name not in flag_values:
      _define(name, flag_values)
  cli.define_verbose(flag_values)


def groups(flag_values: flags.FlagValues = FLAGS) -> Dict[str, List[str]]:
  """{help group: [flag names]} in --helpshort's order."""
  found: Dict[str, List[str]] = {group: [] for group in spec_lib.GROUPS}
  for name in spec_lib.field_names():
    found[spec_lib.option(name).group].append(name)
  found[OUTPUT_GROUP] = [name for name in cli.COMMON_FLAGS if name in flag_values]
  return found


def run_spec(flag_values: flags.FlagValues = FLAGS) -> spec_lib.RunSpec:
  """The RunSpec of parsed flags: the chosen model's defaults where a flag is unset."""
  values = {name: flag_values[name].value for name in spec_lib.field_names()
            if name != "model"}
  return spec_lib.RunSpec.for_model(flag_values["model"].value, **values)


def spec_from_flagfile(path: str, argv: Sequence[str] = ()) -> spec_lib.RunSpec:
  """Parses a flagfile (and more `argv` flags) as main would, without touching FLAGS.

  absl reads the file, so nested --flagfile lines, validators and model defaults are
  the same as on main's command line.

  Args:
    path: an absl flagfile.
    argv: more flags, applied after the file's.

  Returns:
    The RunSpec.

  Raises:
    UsageError: the file cannot be read, or a flag in it is unknown or invalid.
  """
  return spec_from_argv([f"--flagfile={path}", *argv], what=f"flagfile {path}")


def spec_from_argv(argv: Sequence[str], what: str = "flags") -> spec_lib.RunSpec:
  """Parses main's flags from `argv` into a private FlagValues; returns the RunSpec.

  Raises:
    UsageError: an unknown or invalid flag (its absl message, one line).
  """
  return spec_and_arguments(argv, what)[0]


def spec_and_arguments(argv: Sequence[str],
                       what: str = "flags") -> Tuple[spec_lib.RunSpec, List[str]]:
  """(RunSpec, the arguments that are not flags) of `argv`, parsed into a private FlagValues.

  Raises:
    UsageError: an unknown or invalid flag (its absl message, one line).
  """
  flag_values = flags.FlagValues()
  define_flags(flag_values)
  try:
    rest = flag_values(["prog", *argv])[1:]
  except flags.Error as e:
    raise UsageError(f"{what}: {str(e).splitlines()[0]}; fix that flag") from None
  return run_spec(flag_values), rest


def help_text(flag_values: flags.FlagValues = FLAGS) -> str:
  """Every flag of this command, by group, with its default (what --helpshort prints)."""
  lines: List[str] = []
  for group, names in groups(flag_values).items():
    defined = [flag_values[name] for name in names if name in flag_values]
    if defined:
      lines.append(f"{group}:")
      lines += [_flag_help(flag) for flag in defined]
  lines.append("absl: --flagfile=FILE reads flags from a file; --verbosity=1 (-v) shows "
               "TensorFlow's log; --helpfull lists absl's own flags too.")
  return "\n".join(lines)


def _flag_help(flag: flags.Flag) -> str:
  name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
  text = f"  {name}: {flag.help} (default: {flag.default_as_str or 'none'})"
  return textwrap.fill(text, 100, subsequent_indent="      ")


# absl's flag parsing, with --help and --helpshort printing main's docstring and help_text().
parse_with_help = cli.flags_parser(lambda: "\n".join(
    filter(None, [(sys.modules["__main__"].__doc__ or "").strip(), help_text()])))
