"""The command line, end to end in subprocesses: a short run, and bad input exiting cleanly."""

import os

import helpers
import pytest

def cli(*argv, cwd=helpers.ROOT):
  """Runs `python -m mnist_estimator.main ARGV`; returns the CompletedProcess."""
  return helpers.run_module("mnist_estimator.main", *argv, cwd=cwd)


def assert_clean_failure(proc, *words):
  """Non-zero exit, no traceback, and the error line names the problem."""
  assert proc.returncode != 0, proc.stdout + proc.stderr
  assert "Traceback" not in proc.stderr, proc.stderr
  errors = [line for line in proc.stderr.splitlines()
            if line.startswith(("error:", "FATAL Flags parsing error"))]
  assert len(errors) == 1, proc.stderr
  for word in words:
    assert word in errors[0], errors[0]


def test_short_run_trains_evaluates_and_lists_weights(tmp_path):
  model_dir = str(tmp_path / "m")
  proc = cli("--model=linear", "--dataset=mnist_sample", "--steps=3", f"--model_dir={model_dir}")
  assert proc.returncode == 0, proc.stderr
  assert f"model_dir: {model_dir}" in proc.stdout
  assert "eval on 1000 mnist_sample test images: accuracy" in proc.stdout
  assert "global_step 3" in proc.stdout
  proc = cli("--model=linear", "--dataset=mnist_sample", "--mode=weights",
             f"--model_dir={model_dir}", f"--weights_out={tmp_path / 'w.npz'}")
  assert proc.returncode == 0, proc.stderr
  assert "logits/kernel  [784, 10]" in proc.stdout
  assert (tmp_path / "w.npz").exists()


@pytest.mark.parametrize("argv, words", [
    (["--steps=0"], ["--steps=0"]),
    (["--batch_size=0"], ["--batch_size=0"]),
    (["--model=resnet"], ["--model=resnet"]),
    (["--optimizer=lbfgs"], ["--optimizer=lbfgs"]),
    (["--hidden_units=a,b"], ["hidden_units"]),
    (["--dataset=mnist", "--data_dir=/nonexistent/mnist"], ["/nonexistent/mnist"]),
    (["stray_argument"], ["unexpected arguments"]),
])
def test_bad_input_exits_with_one_line(argv, words, tmp_path):
  assert_clean_failure(cli(*argv, f"--model_dir={tmp_path}/m", "--steps=1"
                           if not any(a.startswith("--steps") for a in argv) else "--seed=0"),
                       *words)


def test_model_dir_of_another_model(tmp_path):
  model_dir = f"--model_dir={tmp_path / 'm'}"
  assert cli("--model=linear", "--dataset=mnist_sample", "--steps=1", model_dir).returncode == 0
  checkpoints = sorted(os.listdir(tmp_path / "m"))
  proc = cli("--model=cnn", "--dataset=mnist_sample", "--steps=1", model_dir)
  assert_clean_failure(proc, "holds a linear model", "this cnn run")
  assert sorted(os.listdir(tmp_path / "m")) == checkpoints


def test_model_dir_that_is_a_file(tmp_path):
  path = tmp_path / "file"
  path.write_text("not a directory")
  proc = cli("--model=linear", "--dataset=mnist_sample", "--steps=1", f"--model_dir={path}")
  assert_clean_failure(proc, "is a file")


def test_evaluate_before_training(tmp_path):
  proc = cli("--model=linear", "--dataset=mnist_sample", "--mode=evaluate",
             f"--model_dir={tmp_path / 'empty'}")
  assert_clean_failure(proc, "no checkpoint", "train first")


def test_verbose_shows_the_traceback(tmp_path):
  proc = cli("--model=linear", "--dataset=mnist_sample", "--mode=evaluate", "--verbose",
             f"--model_dir={tmp_path / 'empty'}")
  assert proc.returncode != 0 and "Traceback" in proc.stderr
