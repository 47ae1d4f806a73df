"""Versions follow the disk as TF Serving's file system source: policies, status, live swaps."""

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
from mnist_estimator.serve import batching, config, server, status, versions
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


class _Fake:
  """A servable that loads in no time; a version whose folder holds BAD fails to load."""

  def __init__(self, path, version):
    if os.path.exists(os.path.join(path, "BAD")):
      raise tf.errors.DataLossError(None, None, f"truncated record in {path}")
    self.path, self.version = path, version

  def warm_up(self):
    pass


def _version(base, version, bad=False):
  folder = base / str(version)
  folder.mkdir(parents=True, exist_ok=True)
  (folder / "saved_model.pb").write_bytes(b"x")
  if bad:
    (folder / "BAD").write_bytes(b"")
  return folder


def _states(manager, name="mnist"):
  return [(s["version"], s["state"], s["status"]["error_code"])
          for s in manager.status(name)["model_version_status"]]


def _fake_manager(base, policy=None, labels=()):
  model = config.ModelConfig("mnist", str(base), policy or config.Policy(), labels)
  manager = manager_lib.ModelManager(models=[model], poll_seconds=0, loader=_Fake)
  manager.start()
  return manager


@pytest.mark.parametrize("missing", [False, True])
def test_an_empty_base_path_serves_nothing_until_a_version_appears(tmp_path, missing):
  base = tmp_path / "base"
  if not missing:
    base.mkdir()
  manager = _fake_manager(base)  # starts: TF Serving's source polls on (a sidecar copies later)
  with pytest.raises(status.ApiError, match=r"Servable not found for request: Latest\(mnist\)"):
    manager.get("mnist")
  with pytest.raises(status.ApiError, match="Could not find any versions of model mnist"):
    manager.status("mnist")
  assert not manager.available("mnist")
  _version(base, 7)
  assert manager.poll()
  assert manager.get("mnist").version == 7
  assert _states(manager) == [("7", "AVAILABLE", "OK")]


def test_deleted_versions_are_unloaded_and_status_keeps_them(tmp_path):
  base = tmp_path / "base"
  for v in (1, 2):
    _version(base, v)
  manager = _fake_manager(base)
  assert manager.get("mnist").version == 2 and _states(manager) == [("2", "AVAILABLE", "OK")]
  shutil.rmtree(base / "2")           # the newest goes: the next one is loaded, 2 unloaded
  manager.poll()
  assert manager.get("mnist").version == 1
  assert _states(manager) == [("2", "END", "OK"), ("1", "AVAILABLE", "OK")]
  with pytest.raises(status.ApiError, match=r"Specific\(mnist, 2\)"):
    manager.get("mnist", 2)
  shutil.rmtree(base / "1")           # all gone: nothing is served
  manager.poll()
  with pytest.raises(status.ApiError, match="Servable not found"):
    manager.get("mnist")
  assert _states(manager) == [("2", "END", "OK"), ("1", "END", "OK")]
  _version(base, 1)                   # the old one back: served again
  manager.poll()
  assert manager.get("mnist").version == 1


def test_a_version_that_fails_keeps_its_error_and_the_old_one_serves(tmp_path):
  base = tmp_path / "base"
  _version(base, 1)
  manager = _fake_manager(base)
  folder = _version(base, 2, bad=True)
  assert not manager.poll()  # 2 failed: 1 stays (AvailabilityPreservingPolicy)
  assert manager.get("mnist").version == 1
  state = manager.status("mnist", 2)["model_version_status"][0]
  assert state["state"] == "END" and state["status"]["error_code"] == "DATA_LOSS"
  assert "truncated record" in state["status"]["error_message"]
  assert not manager.poll()  # not tried again while its files are the same
  (folder / "BAD").unlink()  # the copy completes
  assert manager.poll()
  assert manager.get("mnist").version == 2
  assert _states(manager) == [("2", "AVAILABLE", "OK"), ("1", "END", "OK")]


@pytest.mark.parametrize("policy, served", [
    (config.Policy(), [3]),
    (config.Policy("latest", 2), [2, 3]),
    (config.Policy("all"), [1, 2, 3]),
    (config.Policy("specific", versions=(1, 3, 9)), [1, 3]),
])
def test_version_policies(tmp_path, policy, served):
  base = tmp_path / "base"
  for v in (1, 2, 3):
    _version(base, v)
  manager = _fake_manager(base, policy)
  assert manager.served_versions("mnist") == served
  assert manager.get("mnist").version == max(served)
  for v in served:
    assert manager.get("mnist", v).version == v


def test_labels_name_versions(tmp_path):
  base = tmp_path / "base"
  for v in (1, 2):
    _version(base, v)
  manager = _fake_manager(base, config.Policy("all"), (("canary", 2), ("stable", 1)))
  assert manager.get("mnist", label="stable").version == 1
  assert manager.get("mnist", label="canary").version == 2
  with pytest.raises(status.ApiError, match="Unrecognized servable version label: beta"):
    manager.get("mnist", label="beta")
  with pytest.raises(status.ApiError, match="cannot be supplied"):
    manager.get("mnist", 1, "stable")
  with pytest.raises(status.ApiError, match="Request to assign label to version 5 of model "
                     "mnist, which is not currently available for inference"):
    manager.reload([config.ModelConfig("mnist", str(base), config.Policy("all"),
                                       (("stable", 5),))])


def test_a_load_error_code_is_tensorflows(tmp_path):
  assert versions._error_code(tf.errors.NotFoundError(None, None, "x")) == "NOT_FOUND"
  assert versions._error_code(ValueError("x")) == "UNKNOWN"


def _predict_request(image):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "mnist"
  request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.float32([image])))
  return request


class _Load:
  """REST and gRPC clients predicting in a loop; every answer is recorded, none lost."""

  def __init__(self, background):
    self.answers, self.sent, self.stop = [], [0], threading.Event()
    image = [[0.5] * 28] * 28
    self.threads = [threading.Thread(target=self._rest, args=(background.url, image))
                    for _ in range(2)]
    self.threads += [threading.Thread(target=self._grpc, args=(background.grpc_target, image))
                     for _ in range(2)]

  def _rest(self, url, image):
    while not self.stop.is_set():
      self.sent[0] += 1
      code, body = call(url, "POST", "/v1/models/mnist:predict", {"instances": [image]})
      self.answers.append(("rest", code, body.get("error") if code != 200 else None))

  def _grpc(self, target, image):
    with grpc.insecure_channel(target) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      while not self.stop.is_set():
        self.sent[0] += 1
        try:
          version = stub.Predict(_predict_request(image), timeout=30).model_spec.version.value
          self.answers.append(("grpc", version, None))
        except grpc.RpcError as e:
          self.answers.append(("grpc", e.code().name, e.details()))

  def __enter__(self):
    for thread in self.threads:
      thread.start()
    return self

  def __exit__(self, *exc):
    self.stop.set()
    for thread in self.threads:
      thread.join()


def _wait(predicate):
  for _ in range(400):
    if predicate():
      return
    threading.Event().wait(0.05)
  raise AssertionError("the server did not follow the disk within 20 s")


def test_versions_follow_the_disk_under_load(tmp_path, tiny_export):
  """Delete the newest, delete all, restore the old one: each answer is what TF Serving gives."""
  base = tmp_path / "base"
  for v in (1, 2):
    shutil.copytree(os.path.join(tiny_export, "1"), base / str(v))
  app, manager, batcher = server.build(str(base), poll_seconds=0.1,
                                       batch_options=batching.BatchOptions())
  with server.BackgroundServer(app, manager, batcher) as background, _Load(background) as load:
    url = background.url
    assert call(url, "GET", "/v1/models/mnist")[1]["model_version_status"][0]["version"] == "2"
    shutil.rmtree(base / "2")
    _wait(lambda: manager.served_versions("mnist") == [1])
    assert call(url, "GET", "/v1/models/mnist/versions/2")[1]["model_version_status"][0][
        "state"] == "END"
    shutil.rmtree(base / "1")
    _wait(lambda: not manager.available("mnist"))
    code, body = call(url, "POST", "/v1/models/mnist:predict", {"instances": [[[0.0] * 28] * 28]})
    assert (code, body["error"]) == (404, "Servable not found for request: Latest(mnist)")
    shutil.copytree(os.path.join(tiny_export, "1"), base / "1")
    _wait(lambda: manager.served_versions("mnist") == [1])
    threading.Event().wait(0.3)
  manager.stop()
  batcher.close()
  assert len(load.answers) == load.sent[0] > 50  # every request answered
  kinds = {(api, code if code in ("NOT_FOUND", 404) else "ok")
           for api, code, _ in load.answers}
  assert kinds <= {("rest", "ok"), ("rest", 404), ("grpc", "ok"), ("grpc", "NOT_FOUND")}
  assert {code for _, code, _ in load.answers} - {"NOT_FOUND", 404} <= {200, 1, 2}
  assert all(message == "Servable not found for request: Latest(mnist)"
             for _, code, message in load.answers if code in ("NOT_FOUND", 404))


def test_labels_for_unavailable_versions_when_allowed(tmp_path):
  """--allow_version_labels_for_unavailable_models: a label may name a version still to come."""
  base = tmp_path / "base"
  _version(base, 1)
  model = config.ModelConfig("mnist", str(base), config.Policy("all"), (("next", 2),))
  manager = manager_lib.ModelManager(models=[model], poll_seconds=0, loader=_Fake,
                                     allow_labels_for_unavailable=True)
  manager.start()
  with pytest.raises(status.ApiError, match=r"Specific\(mnist, 2\)"):
    manager.get("mnist", label="next")
  _version(base, 2)
  manager.poll()
  assert manager.get("mnist", label="next").version == 2


def test_warmup_records_are_replayed_at_load_and_a_bad_one_fails_it(tmp_path, tiny_export):
  """saved_model_warmup.cc: assets.extra/tf_serving_warmup_requests runs before a version serves."""
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  base = tmp_path / "base"
  for v in (1, 2):
    shutil.copytree(os.path.join(tiny_export, "1"), base / str(v))
  good = prediction_log_pb2.PredictionLog()
  good.predict_log.request.CopyFrom(_predict_request([[0.5] * 28] * 28))
  bad = prediction_log_pb2.PredictionLog()
  bad.predict_log.request.CopyFrom(_predict_request([[0.5] * 28] * 28))
  bad.predict_log.request.inputs["images"].dtype = tf.float64.as_datatype_enum
  for v, records in ((1, [good, good]), (2, [good, bad])):
    (base / str(v) / "assets.extra").mkdir(exist_ok=True)  # class_names.txt may be there
    with tf.io.TFRecordWriter(str(base / str(v) / "assets.extra" /
                                  "tf_serving_warmup_requests")) as f:
      for record in records:
        f.write(record.SerializeToString())
  manager = manager_lib.ModelManager(models=[config.ModelConfig("mnist", str(base),
                                                                config.Policy("all"))],
                                     poll_seconds=0)
  manager.start()
  assert manager.served_versions("mnist") == [1]
  failed = manager.status("mnist", 2)["model_version_status"][0]
  assert failed["state"] == "END" and failed["status"]["error_code"] == "INVALID_ARGUMENT"
  assert failed["status"]["error_message"] == "tensor parsing error: images"  # predict_util.cc
