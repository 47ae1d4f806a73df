"""The serve tests' fixtures: a tiny export and a server of it."""

import shutil
import typing

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


class Served(typing.NamedTuple):
  url: str          # REST: http://127.0.0.1:PORT
  manager: object
  grpc: str         # gRPC: 127.0.0.1:PORT, the same manager and batcher


@pytest.fixture(scope="session")
def served(tiny_export):
  """A batching server of tiny_export as model "mnist", REST and gRPC in one event loop."""
  app, manager, batcher = server.build(tiny_export, poll_seconds=0,
                                       batch_options=batching.BatchOptions())
  with server.BackgroundServer(app, manager, batcher) as background:
    yield Served(background.url, manager, background.grpc_target)
  batcher.close()
