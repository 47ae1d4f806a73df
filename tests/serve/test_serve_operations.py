"""Operations: CORS, Prometheus metrics, the gRPC health service and readiness."""

import http.client

import pytest

from mnist_estimator.serve import batching, server

IMAGE = [[0.5] * 28] * 28


def _raw(url, method, path, headers=None, body=None):
  connection = http.client.HTTPConnection(url.split("//", 1)[1], timeout=30)
  connection.request(method, path, body=body, headers=headers or {})
  response = connection.getresponse()
  answer = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
  connection.close()
  return answer


@pytest.mark.parametrize("cors", [False, True])
def test_cors(tiny_export, cors):
  """http_server.cc: OPTIONS with an http(s) Origin is 200, without one 400; the headers of
  AddCORSHeaders (http_rest_api_util.cc) on every /v1/ answer only with the flag."""
  app, manager, batcher = server.build(tiny_export, poll_seconds=0, cors=cors,
                                       batch_options=batching.BatchOptions())
  with server.BackgroundServer(app) as background:
    url = background.url
    code, headers, body = _raw(url, "OPTIONS", "/v1/models/mnist:predict",
                               {"Origin": "https://example.com",
                                "Access-Control-Request-Method": "POST"})
    assert (code, body) == (200, b"")
    assert ("access-control-allow-origin" in headers) == cors
    if cors:
      assert headers["access-control-allow-methods"] == "POST, GET"
      assert headers["access-control-allow-headers"] == "Content-Type"
    code, _, body = _raw(url, "OPTIONS", "/v1/models/mnist:predict")
    assert code == 400 and b"Origin header is missing in CORS preflight" in body
    code, headers, _ = _raw(url, "POST", "/v1/models/mnist:predict",
                            {"Content-Type": "application/json"},
                            ('{"instances": %s}' % [IMAGE]).encode())
    assert code == 200 and (headers.get("access-control-allow-origin") == "*") == cors
    code, headers, _ = _raw(url, "GET", "/v1/models/nope")
    assert code == 404 and (headers.get("access-control-allow-origin") == "*") == cors
  manager.stop()
  batcher.close()


def _families(url, path):
  from prometheus_client.parser import text_string_to_metric_families  # pylint: disable=g-import-not-at-top
  code, headers, body = _raw(url, "GET", path)
  assert code == 200 and headers["content-type"].startswith("text/plain")
  return {f.name: f for f in text_string_to_metric_families(body.decode())}


def _samples(families, name, sample=None, **labels):
  return {tuple(sorted(s.labels.items())): s.value for s in families[name].samples
          if s.name == (sample or name) and all(s.labels.get(k) == v for k, v in labels.items())}


def test_metrics_count_what_was_sent(tiny_export, tmp_path):
  """--monitoring_config_file's path shows request counts by model, API, entrypoint and status
  that equal the requests sent, latencies, batch sizes and the versions served."""
  import grpc  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  from mnist_estimator.serve import monitoring  # pylint: disable=g-import-not-at-top
  config_file = tmp_path / "monitoring.config"
  config_file.write_text("prometheus_config { enable: true path: '/metrics/tf' }")
  path = monitoring.read_file(str(config_file)).prometheus_path
  app, manager, batcher = server.build(tiny_export, poll_seconds=0, metrics_path=path,
                                       batch_options=batching.BatchOptions())
  body = ('{"instances": %s}' % [IMAGE]).encode()
  with server.BackgroundServer(app, manager, batcher) as background:
    url = background.url
    for _ in range(5):
      assert _raw(url, "POST", "/v1/models/mnist:predict", {}, body)[0] == 200
    for _ in range(3):
      assert _raw(url, "POST", "/v1/models/nope:predict", {}, body)[0] == 404
    assert _raw(url, "GET", "/v1/models/mnist")[0] == 200
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.float32([IMAGE] * 3)))
    with grpc.insecure_channel(background.grpc_target) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      for _ in range(4):
        stub.Predict(request, timeout=30)
      request.inputs["images"].dtype = tf.float64.as_datatype_enum
      with pytest.raises(grpc.RpcError):
        stub.Predict(request, timeout=30)
    families = _families(url, "/metrics/tf")
    assert _raw(url, "GET", "/monitoring/prometheus/metrics")[0] == 404  # the config's path only
  manager.stop()
  batcher.close()
  counts = _samples(families, ":tensorflow:serving:request_count")
  assert counts == {
      (("API", "predict"), ("entrypoint", "REST"), ("model_name", "mnist"), ("status", "OK")): 5,
      (("API", "predict"), ("entrypoint", "REST"), ("model_name", "nope"),
       ("status", "NOT_FOUND")): 3,
      (("API", "get_model_status"), ("entrypoint", "REST"), ("model_name", "mnist"),
       ("status", "OK")): 1,
      (("API", "predict"), ("entrypoint", "GRPC"), ("model_name", "mnist"), ("status", "OK")): 4,
      (("API", "predict"), ("entrypoint", "GRPC"), ("model_name", "mnist"),
       ("status", "INVALID_ARGUMENT")): 1}
  latency = _samples(families, ":tensorflow:serving:request_latency",
                     ":tensorflow:serving:request_latency_count", entrypoint="GRPC")
  assert latency[(("API", "predict"), ("entrypoint", "GRPC"), ("model_name", "mnist"))] == 4
  assert _samples(families, "mnist_estimator_serve_model_versions_available") == {
      (("model_name", "mnist"),): 1}
  batches = _samples(families, ":tensorflow:serving:batching_session:processed_batch_size",
                     ":tensorflow:serving:batching_session:processed_batch_size_sum")
  assert batches == {(("model_name", "mnist"),): 5 * 1 + 4 * 3}  # every row went in a batch


def test_health_and_readiness_follow_the_versions(tiny_export, tmp_path):
  """The standard grpc.health.v1 service and GET /ready: serving once a version is."""
  import grpc  # pylint: disable=g-import-not-at-top
  from grpc_health.v1 import health_pb2, health_pb2_grpc  # pylint: disable=g-import-not-at-top
  base = tmp_path / "base"
  app, manager, batcher = server.build(str(base), poll_seconds=0,
                                       batch_options=batching.BatchOptions())

  def check(target, service):
    with grpc.insecure_channel(target) as channel:
      stub = health_pb2_grpc.HealthStub(channel)
      answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
      return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)

  with server.BackgroundServer(app, manager, batcher) as background:
    code, _, body = _raw(background.url, "GET", "/ready")
    assert code == 503 and b"mnist" in body
    assert check(background.grpc_target, "") == "NOT_SERVING"
    assert check(background.grpc_target, "mnist") == "NOT_SERVING"
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.copytree(f"{tiny_export}/1", base / "1")
    manager.poll()
    assert _raw(background.url, "GET", "/ready")[0] == 200
    assert check(background.grpc_target, "") == "SERVING"
    assert check(background.grpc_target, "mnist") == "SERVING"
    with pytest.raises(grpc.RpcError) as e:
      check(background.grpc_target, "other")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
  manager.stop()
  batcher.close()
