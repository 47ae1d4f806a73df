"""Shared fixtures: absl FLAGS parsed once, a record cache per session, small real data."""

import dataclasses
import os

from mnist_estimator.common import cli

cli.import_tensorflow()  # as the commands do: TF's start-up lines kept off the test output

from absl import flags as absl_flags  # pylint: disable=g-import-not-at-top
import pytest

from mnist_estimator import flagdefs
from mnist_estimator.data import datasets

flagdefs.define_flags()
# absl raises UnparsedFlagAccessError under pytest unless FLAGS are parsed once.
absl_flags.FLAGS(["pytest"])


@pytest.fixture(autouse=True, scope="session")
def _record_cache(tmp_path_factory):
  """Keeps the tf.data record files of the tests out of the user's cache."""
  os.environ["MNIST_ESTIMATOR_CACHE"] = str(tmp_path_factory.mktemp("records"))


@pytest.fixture(scope="session")
def sample():
  """The bundled real-MNIST sample (5000 train / 1000 test)."""
  return datasets.load("mnist_sample")


@pytest.fixture(scope="session")
def small(sample):
  """A 600/200 cut of the sample: enough for 2-20 step flows, fast to evaluate."""
  return dataclasses.replace(sample, x_train=sample.x_train[:600], y_train=sample.y_train[:600],
                             x_test=sample.x_test[:200], y_test=sample.y_test[:200])


@pytest.fixture(scope="session")
def weeks(tmp_path_factory):
  """A generated weekly weather series as 4-week windows: data for the series models."""
  import helpers  # pylint: disable=g-import-not-at-top
  return datasets.load("weather", helpers.write_weather(tmp_path_factory.mktemp("weeks")),
                       window=4)
