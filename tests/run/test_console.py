"""What a person sees and what a run keeps: header, progress lines, flags.txt, HParams."""

import io
import os

import pytest

from mnist_estimator import flagdefs
from mnist_estimator.common import progress as progress_lib
from mnist_estimator.run import header as console
from mnist_estimator.run import history as runrecord
from mnist_estimator.run import spec as spec_lib
from mnist_estimator.run.spec import RunSpec


def test_changed_settings_lists_only_what_differs_from_the_model():
  assert console.changed_settings(RunSpec.for_model("cnn")) == []
  spec = RunSpec.for_model("cnn", steps=1000, optimizer="adam", hidden_units=[64],
                           model_dir="/m", dataset="mnist_sample")
  assert console.changed_settings(spec) == ["optimizer=adam", "steps=1000", "hidden_units=64"]


def test_plain_progress_lines_have_rate_and_eta():
  out = io.StringIO()
  progress = progress_lib.Progress(1000, 100, every_n=100, stream=out, tty=False)
  assert progress.fetch_every == 100
  progress.update(0, 2.3, 0.1, now=0.0)
  progress.update(100, 0.5, 0.9, now=10.0)
  progress.update(200, 0.4, 0.95, now=15.0)
  progress.close()
  lines = out.getvalue().splitlines()
  assert lines[0] == "step 0/1,000    0.0%  loss 2.3000  batch accuracy 0.100"
  assert lines[1] == ("step 100/1,000   10.0%  loss 0.5000  batch accuracy 0.900  "
                      "10.0 steps/s  1,000 images/s  ETA 1:30")
  # ETA from the average rate since the first line: 200 steps in 15 s, 800 left.
  assert lines[2].endswith("20.0 steps/s  2,000 images/s  ETA 1:00")
  assert progress.rates == [10.0, 20.0]


def test_terminal_progress_is_one_live_line():
  out = io.StringIO()
  progress = progress_lib.Progress(50, 10, every_n=100, stream=out, tty=True)
  assert progress.fetch_every == 10
  for step in (0, 10, 20):
    progress.update(step, 1.0, 0.5, now=float(step))
  progress.close()
  text = out.getvalue()
  assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("\n")
  assert "ETA 0:30" in text.split("\r")[-1]


def test_flags_record_reruns_the_job_and_appends_when_it_changes(tmp_path):
  spec = RunSpec.for_model("dnn", model_dir=str(tmp_path), steps=7, hidden_units=[8, 4],
                           report=False)
  path, added = runrecord.write_flags(spec, argv=["main", "--model=dnn"])
  assert added and os.path.basename(path) == "flags.txt"
  assert not runrecord.write_flags(spec, argv=["main", "again"])[1]  # same flags: no record
  assert flagdefs.spec_from_flagfile(path) == spec
  changed = spec.replace(steps=9)
  assert runrecord.write_flags(changed, argv=["main", "--steps=9"])[1]
  text = open(path).read()
  assert text.count("\n# ") + text.startswith("# ") == 2 and "UTC: main --steps=9" in text
  assert flagdefs.spec_from_flagfile(path) == changed  # the newest record wins


@pytest.mark.parametrize("value, shown", [(None, "none"), ((128, 32), "128,32"), (0.5, 0.5)])
def test_hparams_values_are_plain(value, shown):
  spec = RunSpec.for_model("dnn", seed=None if value is None else 3,
                           hidden_units=value if isinstance(value, tuple) else [10, 5],
                           dropout=value if isinstance(value, float) else 0.0)
  values = runrecord.hparams(spec)
  assert set(values) == set(spec_lib.names_with("hparam"))
  assert all(isinstance(v, (bool, int, float, str)) for v in values.values())
  key = {type(None): "seed", tuple: "hidden_units", float: "dropout"}[type(value)]
  assert values[key] == shown
