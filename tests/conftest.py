"""Shared fixtures: a private HOME, absl FLAGS parsed once, a record cache, small real data."""

import atexit
import dataclasses
import os
import shutil
import tempfile

# Where tools keep state between runs: the real home folder and the variables that move its
# parts elsewhere. The suite must not read what an earlier run left there, nor leave anything.
_HOME_VARIABLES = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
                   "MPLCONFIGDIR", "KERAS_HOME", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH",
                   "RAY_ADDRESS", "MNIST_ESTIMATOR_CACHE")


def _private_home():
  """Points HOME (for this process and every subprocess) at a new empty folder.

  Set before TensorFlow is imported: Keras writes ~/.keras/keras.json at import, matplotlib
  its font cache, a private Ray its token. Each pytest process gets its own, removed at exit.
  """
  home = tempfile.mkdtemp(prefix="mnist_estimator-home-")
  os.environ["HOME"] = home
  for name in _HOME_VARIABLES:
    os.environ.pop(name, None)
  atexit.register(shutil.rmtree, home, ignore_errors=True)


_private_home()

from mnist_estimator.common import cli  # pylint: disable=g-import-not-at-top

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
  """A 600/200/200 cut of the sample: enough for 2-20 step flows, fast to evaluate."""
  return dataclasses.replace(sample, x_train=sample.x_train[:600], y_train=sample.y_train[:600],
                             x_test=sample.x_test[:200], y_test=sample.y_test[:200],
                             x_val=sample.x_val[:200], y_val=sample.y_val[:200])


@pytest.fixture(scope="session")
def weeks(tmp_path_factory):
  """A generated weekly weather series as 4-week windows: data for the series models."""
  import helpers  # pylint: disable=g-import-not-at-top
  return datasets.load("weather", helpers.write_weather(tmp_path_factory.mktemp("weeks")),
                       window=4)


def pytest_terminal_summary(terminalreporter, config):
  """The random order's seed beside the result (pytest -q hides pytest-randomly's header)."""
  seed = getattr(config.option, "randomly_seed", None)
  if seed is not None and config.pluginmanager.has_plugin("randomly"):
    terminalreporter.write_line(f"random order: --randomly-seed={seed} repeats it")


# The longest modules, started first: under xdist's --dist loadscope a module runs whole on one
# worker, and one of these drawn last by the random order left the other worker idle for
# up to a minute at the end of the suite. Longest first, as a whole suite's --durations summed
# them per module (2 workers).
_LONGEST_FIRST = ("tests/cluster/test_cluster_ray.py", "tests/run/test_runner.py",
                  "tests/cluster/test_cluster.py", "tests/run/test_bf16.py",
                  "tests/serve/test_serve_browser.py", "tests/test_examples.py",
                  "tests/benchmarks/test_bench.py", "tests/run/test_safety.py",
                  "tests/run/test_own_data_training.py", "tests/test_api.py",
                  "tests/serve/test_serve_main.py", "tests/test_main.py",
                  "tests/models/test_custom.py", "tests/run/test_resume.py",
                  "tests/predict/test_predict.py", "tests/benchmarks/test_time_to_accuracy.py",
                  "tests/run/test_train_and_evaluate.py", "tests/test_own_images.py")


def pytest_configure(config):
  """Modules go to the xdist workers in the order pytest_collection_modifyitems gives.

  pytest-xdist (3.6 on) sorts --dist loadscope's modules by their number of tests unless
  --no-loadscope-reorder is given, which undid _LONGEST_FIRST: the Ray module (4 tests, the
  longest) went out 58th of 71 modules, test_main.py (3) 65th.
  """
  if hasattr(config.option, "loadscopereorder"):
    config.option.loadscopereorder = False


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
  """The longest modules first, each keeping its own (random) order; the rest as drawn."""
  rank = {path: i for i, path in enumerate(_LONGEST_FIRST)}
  where = lambda item: item.nodeid.split("::", 1)[0]
  items.sort(key=lambda item: rank.get(where(item), len(rank)))
