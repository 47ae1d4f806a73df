"""Versions: what is served from a model_dir or base path, and a new version swapped in live."""

import os
import shutil
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serve_helpers import call
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from mnist_estimator.common import saved_model
from mnist_estimator.common.errors import UsageError
from mnist_estimator.serve import batching, server
from mnist_estimator.serve import manager as manager_lib


def test_base_path_of_a_model_dir(tmp_path, tiny_export):
  root = tmp_path / "m" / "export"
  with pytest.raises(UsageError, match="no export in"):
    server.base_path(model_dir=str(tmp_path / "m"))
  with pytest.raises(UsageError, match="--model_dir=DIR"):
    server.base_path()
  shutil.copytree(os.path.join(tiny_export, "1"), root / "latest" / "100")
  assert server.base_path(model_dir=str(tmp_path / "m")) == str(root / "latest")
  shutil.copytree(os.path.join(tiny_export, "1"), root / "best" / "50")
  assert server.base_path(model_dir=str(tmp_path / "m")) == str(root / "best")
  assert server.base_path(model_dir="ignored", saved_model="/b") == "/b"


def test_find_versions(tmp_path, tiny_export):
  shutil.copytree(os.path.join(tiny_export, "1"), tmp_path / "12")
  (tmp_path / "13").mkdir()         # no saved_model.pb yet: not a version
  (tmp_path / "temp-14").mkdir()
  assert saved_model.versions(str(tmp_path)) == {12: str(tmp_path / "12")}
  assert saved_model.versions(str(tmp_path / "12")) == {12: str(tmp_path / "12")}
  assert saved_model.versions(str(tmp_path / "missing")) == {}


def test_no_version_to_serve(tmp_path):
  manager = manager_lib.ModelManager("mnist", str(tmp_path), poll_seconds=0)
  with pytest.raises(UsageError, match="no SavedModel in"):
    manager.start()
  (tmp_path / "3").mkdir()
  (tmp_path / "3" / "saved_model.pb").write_bytes(b"garbage")
  with pytest.raises(UsageError, match="cannot load"):
    manager.start()


def test_a_new_version_is_swapped_in_without_dropping_requests(tmp_path, tiny_export):
  base = tmp_path / "base"
  shutil.copytree(os.path.join(tiny_export, "1"), base / "1")
  app, manager, batcher = server.build(str(base), poll_seconds=0.2,
                                       batch_options=batching.BatchOptions())
  image = [[0.5] * 28] * 28
  failures, versions_seen, stop = [], set(), threading.Event()
  grpc_versions = set()

  def grpc_client(target):
    """TF Serving's stub over gRPC, on the same manager and batcher as REST."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.float32([image])))
    with grpc.insecure_channel(target) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      while not stop.is_set():
        try:
          grpc_versions.add(stub.Predict(request, timeout=30).model_spec.version.value)
        except grpc.RpcError as e:
          failures.append(f"gRPC {e.code()}: {e.details()}")

  def client(url):
    while not stop.is_set():
      code, body = call(url, "POST", "/v1/models/mnist:predict", {"instances": [image]})
      if code != 200:
        failures.append(body)
      versions_seen.add(call(url, "GET", "/v1/models/mnist")[1]["model_version_status"][0]
                        ["version"])

  with server.BackgroundServer(app, manager, batcher) as background:
    clients = [threading.Thread(target=client, args=(background.url,)) for _ in range(3)]
    clients += [threading.Thread(target=grpc_client, args=(background.grpc_target,))
                for _ in range(2)]
    for thread in clients:
      thread.start()
    # A half-written version (no variables yet) is skipped until it is complete.
    (base / "2").mkdir()
    shutil.copy(base / "1" / "saved_model.pb", base / "2")
    threading.Event().wait(0.5)
    shutil.copytree(base / "1" / "variables", base / "2" / "variables")
    for _ in range(300):
      if manager.get("mnist").version == 2:
        break
      threading.Event().wait(0.05)
    threading.Event().wait(0.5)
    stop.set()
    for thread in clients:
      thread.join()
    assert manager.get("mnist").version == 2
    assert call(background.url, "GET", "/v1/models/mnist/versions/2")[0] == 200
    assert call(background.url, "GET", "/v1/models/mnist/versions/1")[0] == 404
  manager.stop()
  batcher.close()
  assert not failures
  assert versions_seen == {"1", "2"}
  assert grpc_versions == {1, 2}
