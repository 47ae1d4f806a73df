"""Flags: per-model defaults, validation, and every flagfile under flags/ parses."""

import dataclasses
import glob
import os

import helpers
import pytest
from absl import flags as absl_flags
from absl.testing import flagsaver

from mnist_estimator import flagdefs, models
from mnist_estimator.common.errors import UsageError
from mnist_estimator.run import spec as spec_lib

FLAGS = absl_flags.FLAGS
ROOT = helpers.ROOT
FLAGFILES = sorted(glob.glob(os.path.join(ROOT, "flags", "*.flags")))


@pytest.fixture(autouse=True)
def _flags_as_conftest_left_them():
  """Each test leaves FLAGS parsed with the defaults, whatever it parsed or failed to parse.

  flagsaver puts the values back, but not the parsed state: after a refused FLAGS(argv) the
  process' FLAGS stayed unparsed, and a later test reading FLAGS.model failed (by order).
  """
  with flagsaver.flagsaver():
    yield
  FLAGS.mark_as_parsed()


def parse(*argv):
  """Parses argv into FLAGS (inside a flagsaver) and returns the RunSpec."""
  FLAGS.unparse_flags()
  FLAGS(["prog", *argv])
  return flagdefs.run_spec()


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_unset_flags_take_the_models_defaults(name):
  with flagsaver.flagsaver():
    spec = parse(f"--model={name}")
  defaults = models.get_model(name).defaults
  for key in spec_lib.model_defaulted():
    # What the model names, else the field's base value.
    expected = defaults.get(key, spec_lib.option(key).base)
    expected = tuple(expected) if key == "hidden_units" else expected
    assert getattr(spec, key) == expected, key


def test_tutorial_defaults_for_cnn():
  with flagsaver.flagsaver():
    spec = parse("--model=cnn")
  assert (spec.optimizer, spec.learning_rate, spec.batch_size, spec.steps, spec.dropout) == (
      "sgd", 0.001, 100, 20000, 0.4)
  assert (spec.mode, spec.input, spec.dataset) == ("train", "tfdata", "mnist")


def test_explicit_flags_win():
  with flagsaver.flagsaver():
    spec = parse("--model=dnn", "--hidden_units=128,32", "--activation=sigmoid",
                 "--optimizer=momentum", "--learning_rate=0.1", "--steps=7")
  assert spec.hidden_units == (128, 32) and spec.activation == "sigmoid"
  assert (spec.optimizer, spec.learning_rate, spec.steps) == ("momentum", 0.1, 7)


@pytest.mark.parametrize("argv, message", [
    (["--steps=0"], "steps"),
    (["--steps=-5"], "steps"),
    (["--batch_size=0"], "batch_size"),
    (["--model=resnet"], "model"),
    (["--optimizer=lbfgs"], "optimizer"),
    (["--hidden_units=a,b"], "hidden_units must be comma-separated positive integers"),
    (["--hidden_units=0"], "hidden_units"),
    (["--mode=fly"], "mode"),
    (["--input=csv"], "input"),
    (["--dropout=1.5"], "dropout"),
    (["--log_tensors=gradients"], "log_tensors takes names from"),
])
def test_bad_values_are_rejected_at_parse_time(argv, message):
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    with pytest.raises(absl_flags.Error, match=message):
      FLAGS(["prog", *argv])


def test_there_is_a_flagfile_per_model():
  """Each model has its seed's <model>.flags, or a recipe of ours that trains it (fast.flags)."""
  names = {os.path.basename(path)[:-len(".flags")] for path in FLAGFILES}
  for path in FLAGFILES:
    with open(path) as f:
      names |= {line.strip()[len("--model="):] for line in f if line.startswith("--model=")}
  assert set(models.MODELS) <= names


@pytest.mark.parametrize("path", FLAGFILES, ids=os.path.basename)
def test_flagfile_parses(path):
  with flagsaver.flagsaver():
    spec = parse(f"--flagfile={path}")
  with open(path) as f:
    text = f.read()
  assert f"--model={spec.model}" in text and spec.model in models.MODELS
  assert text.startswith(("# Seed", "# Beyond")), "a flagfile says which seed it reproduces"


def test_cnn_flagfile_is_the_tutorial():
  with flagsaver.flagsaver():
    spec = parse(f"--flagfile={os.path.join(ROOT, 'flags', 'cnn.flags')}")
  assert (spec.optimizer, spec.learning_rate, spec.batch_size, spec.steps) == (
      "sgd", 0.001, 100, 20000)
  assert spec.input == "numpy" and list(spec.log_tensors) == ["probabilities"]
  assert spec.log_every_n_iter == 50


def test_every_field_is_a_flag_with_the_fields_default():
  # Adding a run option means one RunSpec field: the flag, its default and help come from it.
  parsed = flagdefs.run_spec()  # conftest parsed no flags: every default
  for field in dataclasses.fields(spec_lib.RunSpec):
    option = spec_lib.option(field.name)
    flag = FLAGS[field.name]
    assert option.help in flag.help and option.group in flagdefs.groups(), field.name
    if option.model_defaulted:
      assert flag.default is None and "(model default)" in flag.help, field.name
    elif field.name != "model":
      default = list(map(str, field.default)) if isinstance(field.default, tuple) else field.default
      assert flag.default == default, field.name
      assert getattr(parsed, field.name) == field.default, field.name
    if option.choices:
      assert list(flag.parser.enum_values) == list(option.choices), field.name


def test_for_model_takes_only_that_models_defaults():
  linear = spec_lib.RunSpec.for_model("linear")
  assert linear.hidden_units == () and linear.dropout == 0.0 and linear.optimizer == "ftrl"
  assert spec_lib.RunSpec.for_model("linear", hidden_units=None).hidden_units == ()
  with pytest.raises(TypeError):
    spec_lib.RunSpec(model="linear")  # the model-defaulted fields have no default
  with pytest.raises(dataclasses.FrozenInstanceError):
    linear.steps = 3  # specs are changed with replace(), never in place


def test_spec_from_flagfile_is_parsed_by_absl(tmp_path):
  inner = tmp_path / "inner.flags"
  inner.write_text("--model=dnn\n--hidden_units=64,32\n")
  outer = tmp_path / "outer.flags"
  outer.write_text(f"# comment\n--flagfile={inner}\n--noreport\n--seed=3\n")
  spec = flagdefs.spec_from_flagfile(str(outer), ["--steps=9"])
  assert (spec.model, spec.hidden_units, spec.report, spec.seed, spec.steps) == (
      "dnn", (64, 32), False, 3, 9)
  assert spec.optimizer == models.get_model("dnn").defaults["optimizer"]
  assert FLAGS.model == "cnn"  # the process' flags are untouched
  outer.write_text("--steps=many\n")
  with pytest.raises(UsageError, match="steps"):
    flagdefs.spec_from_flagfile(str(outer))
  outer.write_text("--hidden_units=a,b\n")
  with pytest.raises(UsageError, match="hidden_units must be comma-separated"):
    flagdefs.spec_from_flagfile(str(outer))
  with pytest.raises(UsageError, match="no.such"):
    flagdefs.spec_from_flagfile(str(tmp_path / "no.such"))


def test_fast_995_flagfile_is_the_995_recipe():
  with flagsaver.flagsaver():
    spec = parse(f"--flagfile={os.path.join(ROOT, 'flags', 'fast_995.flags')}")
  assert (spec.model, spec.optimizer, spec.learning_rate, spec.batch_size, spec.epochs) == (
      "fast_cnn", "adam", 0.005, 256, 8)
  assert (spec.lr_schedule, spec.lr_warmup, spec.adam_epsilon, spec.dropout) == (
      "one_cycle", 0.15, 1e-7, 0.4)
  assert (spec.adam_beta1, spec.adam_beta2, list(spec.hidden_units)) == (0.7, 0.9, [256])
  assert tuple(spec.augment) == ("shift", "rotate") and spec.moving_average_decay == 0.999


def test_fast_flagfile_is_the_fast_recipe():
  with flagsaver.flagsaver():
    spec = parse(f"--flagfile={os.path.join(ROOT, 'flags', 'fast.flags')}")
  assert (spec.model, spec.optimizer, spec.learning_rate, spec.batch_size, spec.epochs) == (
      "fast_cnn", "adam", 0.015, 256, 1)
  assert (spec.adam_beta1, spec.adam_beta2, spec.adam_epsilon, spec.lr_schedule,
          spec.lr_warmup) == (0.7, 0.9, 1e-7, "one_cycle", 0.15)
  assert spec.dropout == 0 and list(spec.hidden_units) == [256]
