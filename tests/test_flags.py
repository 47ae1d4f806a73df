"""Flags: per-model defaults, validation, and every flagfile under flags/ parses."""

import glob
import os

from absl import flags as absl_flags
from absl.testing import flagsaver
import pytest

from mnist_estimator import flags
from mnist_estimator import models

FLAGS = absl_flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGFILES = sorted(glob.glob(os.path.join(ROOT, "flags", "*.flags")))


def parse(*argv):
  """Parses argv into FLAGS (inside a flagsaver) and returns the RunSpec."""
  FLAGS.unparse_flags()
  FLAGS(["prog", *argv])
  return flags.run_spec()


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_unset_flags_take_the_models_defaults(name):
  with flagsaver.flagsaver():
    spec = parse(f"--model={name}")
  defaults = models.get_model(name).defaults
  for key in flags.MODEL_DEFAULTED:
    assert getattr(spec, key) == defaults[key], key


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
  assert spec.hidden_units == [128, 32] and spec.activation == "sigmoid"
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
  names = {os.path.basename(path)[:-len(".flags")] for path in FLAGFILES}
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
