"""The serve tests' fixtures: a tiny export and a server of it."""

import shutil

import pytest
from serve_helpers import train_and_export

from mnist_estimator.serve import batching, server


@pytest.fixture(scope="session")
def tiny_export(small, tmp_path_factory):
  """A linear model trained 10 steps, as a TF Serving base path holding version 1."""
  root = tmp_path_factory.mktemp("serve_export")
  path = train_and_export(small, str(root))
  base = root / "base"
  shutil.copytree(path, base / "1")
  return str(base)


@pytest.fixture(scope="session")
def served(tiny_export):
  """(url, manager) of a batching server of tiny_export as model "mnist"."""
  app, manager, batcher = server.build(tiny_export, poll_seconds=0,
                                       batch_options=batching.BatchOptions())
  with server.BackgroundServer(app) as background:
    yield background.url, manager
  batcher.close()
