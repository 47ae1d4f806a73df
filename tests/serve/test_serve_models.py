"""Several models from TF Serving's ModelServerConfig: REST, gRPC, labels, reloads, the file."""

import os
import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from serve_helpers import call
from tensorflow_serving.apis import (get_model_status_pb2, model_management_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2

from mnist_estimator.common.errors import UsageError
from mnist_estimator.serve import batching, config, server

IMAGE = [[0.5] * 28] * 28


def _config_text(models):
  """A ModelServerConfig text: models is [(name, base, extra text)]."""
  entries = "".join(f"config {{ name: '{name}' base_path: '{base}' {extra} }}\n"
                    for name, base, extra in models)
  return f"model_config_list {{\n{entries}}}\n"


@pytest.fixture(name="bases")
def _bases(tmp_path, tiny_export):
  """Two base paths: "a" with versions 1 and 2, "b" with version 5."""
  for name, numbers in (("a", (1, 2)), ("b", (5,))):
    for v in numbers:
      shutil.copytree(os.path.join(tiny_export, "1"), tmp_path / name / str(v))
  return tmp_path


@pytest.fixture(name="two")
def _two(bases):
  """A server of two models from a config file: a (all versions, labelled) and b."""
  path = bases / "models.config"
  path.write_text(_config_text([
      ("a", bases / "a", "model_version_policy { all {} } "
       "version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 2 }"),
      ("b", bases / "b", "")]))
  app, manager, batcher = server.build(models=config.read_file(str(path)), poll_seconds=0,
                                       batch_options=batching.BatchOptions())
  with server.BackgroundServer(app, manager, batcher) as background:
    yield background, manager
  batcher.close()


def _predict(stub, name, version=None, label=None):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = name
  if version is not None:
    request.model_spec.version.value = version
  if label is not None:
    request.model_spec.version_label = label
  request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.float32([IMAGE])))
  return stub.Predict(request, timeout=30).model_spec.version.value


def test_two_models_over_rest_and_grpc(two):
  background, manager = two
  assert manager.names() == ["a", "b"] and manager.name == "a"
  url = background.url
  status_a = call(url, "GET", "/v1/models/a")[1]["model_version_status"]
  assert [(s["version"], s["state"]) for s in status_a] == [("2", "AVAILABLE"), ("1", "AVAILABLE")]
  assert call(url, "GET", "/v1/models/b")[1]["model_version_status"][0]["version"] == "5"
  for path in ("/v1/models/a:predict", "/v1/models/a/labels/stable:predict",
               "/v1/models/a/versions/1:predict", "/v1/models/b:predict"):
    assert call(url, "POST", path, {"instances": [IMAGE]})[0] == 200, path
  code, body = call(url, "POST", "/v1/models/a/labels/beta:predict", {"instances": [IMAGE]})
  assert (code, body["error"]) == (400, "Unrecognized servable version label: beta")
  assert call(url, "POST", "/v1/models/c:predict", {"instances": [IMAGE]})[0] == 404
  assert call(url, "GET", "/v1/models/a/labels/canary/metadata")[1]["model_spec"][
      "version"] == "2"
  with grpc.insecure_channel(background.grpc_target) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    assert _predict(stub, "a") == 2
    assert _predict(stub, "a", label="stable") == 1
    assert _predict(stub, "a", label="canary") == 2
    assert _predict(stub, "b") == 5
    with pytest.raises(grpc.RpcError) as e:
      _predict(stub, "b", version=1)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "Servable not found for request: Specific(b, 1)"


def _reload(channel, text):
  request = model_management_pb2.ReloadConfigRequest()
  text_format.Parse(text, request.config)
  return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
      request, timeout=60).status


def _status(channel, name, version=None):
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = name
  if version is not None:
    request.model_spec.version.value = version
  answer = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)
  return [(s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state))
          for s in answer.model_version_status]


def test_handle_reload_config_request(two, bases):
  background, manager = two
  with grpc.insecure_channel(background.grpc_target) as channel:
    # b leaves, c (a's files, latest 1) arrives: loaded before the answer.
    status = _reload(channel, _config_text([("a", bases / "a", ""), ("c", bases / "a", "")]))
    assert status.error_code == 0 and status.error_message == ""
    assert manager.names() == ["a", "c"]
    assert _status(channel, "c") == [(2, "AVAILABLE")]
    assert _status(channel, "a") == [(2, "AVAILABLE"), (1, "END")]  # latest 1 now
    assert _status(channel, "b") == [(5, "END")]
    code, body = call(background.url, "POST", "/v1/models/b:predict", {"instances": [IMAGE]})
    assert (code, body["error"]) == (404, "Servable not found for request: Latest(b)")
    # What TF Serving refuses (server_core.cc), in the response's status (a label is checked
    # after the models are applied, as there).
    refused = [
        (_config_text([("a", "relative/a", "")]), "INVALID_ARGUMENT",
         "Expected model a to have an absolute path or URI; got base_path()=relative/a"),
        (_config_text([("a", bases / "a", ""), ("a", bases / "b", "")]), "INVALID_ARGUMENT",
         "Illegal to list model a multiple times in config list"),
        (_config_text([("a", bases / "a", "version_labels { key: 'x' value: 9 }")]),
         "FAILED_PRECONDITION", "Request to assign label to version 9 of model a, which is not "
         "currently available for inference"),
    ]
    for text, code, message in refused:
      status = _reload(channel, text)
      assert (status.error_code, status.error_message) == (
          getattr(grpc.StatusCode, code).value[0], message)
      if code == "INVALID_ARGUMENT":
        assert manager.names() == ["a", "c"]
    with pytest.raises(grpc.RpcError) as e:  # no name: NOT_FOUND (get_model_status_impl.cc)
      _status(channel, "")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details().strip() == "Could not find any versions of model"


def test_the_config_file_is_read_again(bases):
  path = bases / "models.config"
  path.write_text(_config_text([("a", bases / "a", "")]))
  app, manager, batcher = server.build(models=config.read_file(str(path)), poll_seconds=0)
  del app, batcher
  watcher = config.FileWatcher(str(path), 0, manager.reload)
  assert not watcher.check()  # unchanged
  path.write_text(_config_text([("a", bases / "a", ""), ("b", bases / "b", "")]))
  assert watcher.check()
  assert manager.served_versions("b") == [5]
  path.write_text("model_config_list { config { nme: 'x' } }")  # a typo: logged, config kept
  assert not watcher.check()
  assert manager.names() == ["a", "b"]


def test_config_file_errors_are_one_line(tmp_path):
  path = tmp_path / "bad.config"
  path.write_text("model_config_list { config { name: 'a' base_pth: '/x' } }")
  with pytest.raises(UsageError, match=r"is not a text-format ModelServerConfig: .*base_pth"):
    config.read_file(str(path))
  with pytest.raises(UsageError, match="cannot read --model_config_file"):
    config.read_file(str(tmp_path / "missing.config"))
  path.write_text("model_config_list { config { name: 'a' base_path: 'rel' } }")
  with pytest.raises(UsageError, match="to have an absolute path"):
    config.read_file(str(path))


def test_policies_and_labels_are_read_from_the_proto():
  proto = text_format.Parse(
      "model_config_list { config { name: 'm' base_path: '/m' model_version_policy { latest "
      "{ num_versions: 3 } } } config { name: 'n' base_path: '/n' model_version_policy { "
      "specific { versions: 4 versions: 2 } } version_labels { key: 'x' value: 4 } } }",
      model_server_config_pb2.ModelServerConfig())
  m, n = config.from_proto(proto)
  assert m.policy == config.Policy("latest", 3) and m.labels == ()
  assert n.policy == config.Policy("specific", versions=(2, 4)) and n.label_map == {"x": 4}


def test_a_config_of_no_models_serves_none_until_one_is_added(bases):
  """An empty model_config_list is a config TF Serving takes: nothing served, nothing waited on.
  The page says so (it failed with a 500), and opens on the first model once one is added."""
  app, manager, batcher = server.build(models=[], poll_seconds=0)
  assert manager.names() == [] and not manager.available("a")
  with server.BackgroundServer(app) as background:
    code, page = call(background.url, "GET", "/", raw=True)
    assert code == 503 and b"No model is served yet" in page and b"--model_config_file" in page
    manager.reload([config.ModelConfig("a", str(bases / "a"))])
    assert manager.served_versions("a") == [2]
    code, page = call(background.url, "GET", "/", raw=True)
    assert code == 200 and b'<meta name="model-name" content="a">' in page
  batcher.close()
  manager.stop()
