"""requirements/lock.txt: in step with pyproject.toml's ranges, and what this venv holds."""

import importlib.metadata
import os
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
  import tomllib
except ImportError:  # Python < 3.11: the lock holds tomli there (pytest needs it)
  import tomli as tomllib

from helpers import ROOT  # pylint: disable=g-bad-import-order

LOCK = os.path.join(ROOT, "requirements", "lock.txt")


def _pins():
  """{name: version} of every lock entry whose marker holds for this Python."""
  with open(LOCK) as f:
    text = f.read().replace("\\\n", " ")
  pins = {}
  for line in text.splitlines():
    line = line.split("--hash")[0].strip()
    if line and not line.startswith("#"):
      requirement = Requirement(line)
      if requirement.marker is None or requirement.marker.evaluate():
        (version,) = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        pins[canonicalize_name(requirement.name)] = version
  return pins


def _declared():
  """pyproject.toml's dependencies and every extra's, self-references expanded."""
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    project = tomllib.load(f)["project"]
  extras = project["optional-dependencies"]
  found, todo = [], list(project["dependencies"]) + [r for rs in extras.values() for r in rs]
  for text in todo:
    match = re.fullmatch(r"mnist_estimator\[(\w+)\]", text)
    if not match:
      found.append(Requirement(text))
  return found


def test_every_declared_dependency_has_a_pin_inside_its_range():
  """A range changed in pyproject.toml without `make lock` fails here, not on a user's machine."""
  pins = _pins()
  wrong = []
  for requirement in _declared():
    if requirement.marker is not None and not requirement.marker.evaluate():
      continue
    pin = pins.get(canonicalize_name(requirement.name))
    if pin is None or not requirement.specifier.contains(pin, prereleases=True):
      wrong.append(f"{requirement} (lock: {pin})")
  assert not wrong, f"run `make lock`: {wrong}"


def test_every_line_has_hashes():
  with open(LOCK) as f:
    entries = re.split(r"\n(?=\S)", f.read())
  pins = [entry for entry in entries if re.match(r"[A-Za-z0-9]", entry)]
  assert len(pins) > 50
  assert all("--hash=sha256:" in entry for entry in pins), [
      entry.splitlines()[0] for entry in pins if "--hash=sha256:" not in entry]


@pytest.mark.skipif(not os.path.exists(os.path.join(sys.prefix, ".installed")),
                    reason="not run from a venv of `make install`")
def test_the_venv_holds_exactly_the_locked_versions():
  """`make install` took the lock: each package it names is installed at its pinned version."""
  differ = {}
  for name, version in _pins().items():
    try:
      installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      installed = None
    if installed != version:
      differ[name] = (version, installed)
  assert not differ, f"(lock, installed): {differ}; make install"


def test_a_folder_named_mnist_estimator_in_the_working_directory_does_not_shadow_the_package(
    tmp_path):
  """The default model_dirs live in /tmp/mnist_estimator, and a clone may be ~/mnist_estimator.

  With setuptools' default editable finder (after the path's), such a folder in the working
  directory was imported as an empty namespace package instead (the cluster then failed with
  "module 'mnist_estimator' has no attribute 'GRPC_FORK_ENV'"); `make install` installs in
  compat mode, the checkout on sys.path.
  """
  (tmp_path / "mnist_estimator" / "fast_cnn-mnist_sample").mkdir(parents=True)
  code = ("import mnist_estimator, mnist_estimator.cluster.ray_engine; "
          "print(mnist_estimator.__file__, mnist_estimator.GRPC_FORK_ENV)")
  done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                        text=True, timeout=60, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.startswith(os.path.join(ROOT, "mnist_estimator", "__init__.py")), done.stdout
