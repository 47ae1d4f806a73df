"""`python -m mnist_estimator.main` as a user runs it: a run, its log file, errors, --helpshort.

Also predict's and serve's --help.

Real processes, few of them (each imports TensorFlow): the bad-input and safety matrices
run main's code in-process (run/test_bad_input.py, run/test_safety.py).
"""

import json

import helpers
import pytest

from mnist_estimator import flagdefs


def cli(*argv):
  return helpers.run_module("mnist_estimator.main", *argv)


def test_a_run_prints_the_header_and_keeps_tensorflow_in_its_log(tmp_path):
  model_dir = tmp_path / "m"
  proc = cli("--model=linear", "--dataset=mnist_sample", "--steps=3", f"--model_dir={model_dir}",
             "--noreport")
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.splitlines()
  assert lines[0] == "train linear on mnist_sample"
  assert ("data: 4,500 train / 500 validation / 1,000 test images of 28x28x1, 10 classes; "
          "from bundled sample") in proc.stdout
  assert f"model_dir: {model_dir}" in lines and any(
      line.startswith("precision: train step") for line in lines)
  assert "eval on 1000 mnist_sample test images: accuracy" in proc.stdout
  assert "global_step 3" in proc.stdout
  # What the test evaluation took (a time-to-accuracy counts it; train_stats.json needs a
  # measured rate, which 3 steps do not give).
  evaluation = json.loads((model_dir / "eval_stats.json").read_text())
  assert evaluation["examples"] == 1000 and evaluation["global_step"] == 3
  assert 0 < evaluation["seconds"] and 0 <= evaluation["accuracy"] <= 1
  # TF's INFO log and its start-up lines go to the run's log file, not the console.
  assert "Calling model_fn" not in proc.stdout + proc.stderr
  assert "Unable to register" not in proc.stderr
  log = (model_dir / "mnist_estimator.log").read_text()
  assert "Calling model_fn" in log and "Unable to register cuDNN factory" in log


def test_a_mirrored_run_with_evaluations_keeps_tensorflows_notices_in_its_log(tmp_path):
  # Each evaluation under a strategy printed tf.data's UserWarning about options (2 lines), and
  # exports less than a second apart tf.estimator's "Directory ... already exists; retrying".
  model_dir = tmp_path / "m"
  proc = cli("--model=linear", "--dataset=mnist_sample", "--steps=30", "--eval_every_steps=10",
             "--mode=train_and_evaluate", "--distribute=mirrored", f"--model_dir={model_dir}",
             "--noreport")
  assert proc.returncode == 0, proc.stderr
  assert "To make it possible" not in proc.stderr and "already exists; retrying" not in proc.stderr
  assert proc.stdout.count("eval on 500 mnist_sample validation images") == 3
  assert "To make it possible to preserve tf.data options" in (
      model_dir / "mnist_estimator.log").read_text()


def test_errors_are_one_line_and_verbose_shows_the_traceback(tmp_path):
  flag_error = cli("--model=linear", "--steps=0", f"--model_dir={tmp_path}/m")
  assert flag_error.returncode == 1 and "Traceback" not in flag_error.stderr
  assert "FATAL Flags parsing error: flag --steps=0" in flag_error.stderr
  untrained = ["--model=linear", "--dataset=mnist_sample", "--mode=evaluate",
               f"--model_dir={tmp_path}/empty"]
  verbose = cli(*untrained, "--verbose", "-v")
  assert verbose.returncode != 0 and "Traceback" in verbose.stderr
  assert "no checkpoint in --model_dir" in verbose.stderr
  assert "Using config" in verbose.stderr  # -v: TensorFlow's INFO log on the console too


def test_helpshort_lists_every_flag_by_group_with_defaults():
  proc = cli("--helpshort")
  assert proc.returncode == 0, proc.stderr
  out = proc.stdout
  groups = list(flagdefs.groups())
  positions = [out.index(f"\n{group}:\n") for group in groups]
  assert positions == sorted(positions)
  names = [name for group in flagdefs.groups().values() for name in group]
  assert len(names) >= 40
  for name in names:
    assert f"--{name}:" in out or f"--[no]{name}:" in out, name
  assert "--[no]report:" in out and "(default: 'true')" in out
  assert "(model default)" in out
  assert "Unable to register" not in proc.stderr  # the CUDA factory lines stay off the console


@pytest.mark.parametrize("module, flag", [("mnist_estimator.predict", "--saved_model"),
                                          ("mnist_estimator.serve", "--model_base_path")])
def test_predict_and_serve_help_list_their_flags(module, flag):
  # absl's --help lists the __main__ module's flags: none for `python -m` of a package's
  # __main__.py or a console script (mnist-estimator-predict), which call the command's module.
  for option in ("--help", "-h"):
    proc = helpers.run_module(module, option)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(("Predicts image", "`python -m mnist_estimator.serve`"))
    assert f"  {flag}:" in proc.stdout and "  --[no]verbose:" in proc.stdout, proc.stdout
