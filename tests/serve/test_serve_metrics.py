"""serve.metrics: TF Serving's metric names, labels and units, read back by Prometheus' parser."""

import asyncio
import threading

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route

from mnist_estimator.serve import metrics as metrics_lib
from mnist_estimator.serve.metrics import Metrics


def _families(metrics):
  body, content_type = metrics.exposition()
  assert content_type == "text/plain; version=0.0.4; charset=utf-8"
  return {f.name: f for f in text_string_to_metric_families(body.decode())}


def _samples(family, suffix=""):
  """{sorted label items: value} of the family's samples named NAME+suffix."""
  return {tuple(sorted(s.labels.items())): s.value for s in family.samples
          if s.name == family.name + suffix}


def _bucket(family, le, **labels):
  (value,) = [s.value for s in family.samples if s.name == family.name + "_bucket"
              and s.labels.get("le") == le and all(s.labels[k] == v for k, v in labels.items())]
  return value


def test_requests_counted_by_model_api_entrypoint_and_status():
  metrics = Metrics()
  metrics.request("mnist", "predict", "REST", "OK", 0.002)
  metrics.request("mnist", "predict", "REST", "OK", 0.004)
  metrics.request("mnist", "predict", "GRPC", "INVALID_ARGUMENT", 0.001)
  metrics.request("other", "get_model_status", "GRPC", "NOT_FOUND", 0.001)
  families = _families(metrics)
  counts = families[metrics_lib.REQUEST_COUNT]
  assert counts.name == ":tensorflow:serving:request_count"  # TF Serving's exact name
  assert _samples(counts) == {
      (("API", "predict"), ("entrypoint", "REST"), ("model_name", "mnist"), ("status", "OK")): 2,
      (("API", "predict"), ("entrypoint", "GRPC"), ("model_name", "mnist"),
       ("status", "INVALID_ARGUMENT")): 1,
      (("API", "get_model_status"), ("entrypoint", "GRPC"), ("model_name", "other"),
       ("status", "NOT_FOUND")): 1}


def test_latency_in_microseconds_only_for_ok_requests():
  """TF Serving's request_latency: microseconds, its buckets, successful requests only."""
  metrics = Metrics()
  metrics.request("mnist", "predict", "REST", "OK", 0.002)
  metrics.request("mnist", "predict", "REST", "OK", 0.004)
  metrics.request("mnist", "predict", "REST", "UNAVAILABLE", 5.0)
  latency = _families(metrics)[":tensorflow:serving:request_latency"]
  assert latency.type == "histogram"
  labels = (("API", "predict"), ("entrypoint", "REST"), ("model_name", "mnist"))
  assert _samples(latency, "_count") == {labels: 2}
  assert abs(_samples(latency, "_sum")[labels] - 6000) < 1e-6
  assert _bucket(latency, "1983.59") == 0 and _bucket(latency, "3570.47") == 1
  assert _bucket(latency, "6426.84") == 2 and _bucket(latency, "+Inf") == 2
  limits = sorted({float(s.labels["le"]) for s in latency.samples if "le" in s.labels})
  assert limits[0] == 10 and limits[1] == 18 and len(limits) == 34  # 33 and +Inf


def test_batches_sizes_and_queuing_per_model():
  metrics = Metrics()
  metrics.batch("mnist", 1, [0.0001])
  metrics.batch("mnist", 5, [0.001, 0.002])
  metrics.batch("other", 64)
  families = _families(metrics)
  sizes = families[":tensorflow:serving:batching_session:processed_batch_size"]
  assert _samples(sizes, "_count") == {(("model_name", "mnist"),): 2,
                                       (("model_name", "other"),): 1}
  assert _samples(sizes, "_sum")[(("model_name", "mnist"),)] == 6
  assert _bucket(sizes, "1.0", model_name="mnist") == 1
  assert _bucket(sizes, "4.0", model_name="mnist") == 1
  assert _bucket(sizes, "8.0", model_name="mnist") == 2
  assert _bucket(sizes, "32.0", model_name="other") == 0
  assert _bucket(sizes, "64.0", model_name="other") == 1
  queuing = families[":tensorflow:serving:batching_session:queuing_latency"]
  assert _samples(queuing, "_count") == {(("model_name", "mnist"),): 3}
  assert abs(_samples(queuing, "_sum")[(("model_name", "mnist"),)] - 3100) < 1e-6


def test_versions_gauge_set_and_forgotten():
  metrics = Metrics()
  metrics.versions("mnist", 2)
  metrics.versions("other", 0)
  metrics.versions("mnist", 1)
  family = _families(metrics)[metrics_lib.VERSIONS]
  assert family.type == "gauge"
  assert _samples(family) == {(("model_name", "mnist"),): 1, (("model_name", "other"),): 0}
  metrics.forget("other")
  assert _samples(_families(metrics)[metrics_lib.VERSIONS]) == {(("model_name", "mnist"),): 1}


def test_queue_length_read_at_scrape_time():
  rows = {"n": 3}
  metrics = Metrics(queue_length=lambda: rows["n"])
  assert _samples(_families(metrics)[metrics_lib.QUEUE_ROWS]) == {(): 3}
  rows["n"] = 7
  assert _samples(_families(metrics)[metrics_lib.QUEUE_ROWS]) == {(): 7}
  per_model = Metrics(queue_length=lambda: {"mnist": 2, "other": 0})
  assert _samples(_families(per_model)[metrics_lib.QUEUE_ROWS]) == {
      (("model_name", "mnist"),): 2, (("model_name", "other"),): 0}
  assert metrics_lib.QUEUE_ROWS not in _families(Metrics())  # batching off: no gauge


def test_a_failing_queue_callback_leaves_the_rest_of_the_page():
  def broken():
    raise RuntimeError("batcher closed")
  metrics = Metrics(queue_length=broken)
  metrics.request("mnist", "predict", "REST", "OK", 0.001)
  families = _families(metrics)
  assert metrics_lib.QUEUE_ROWS not in families and metrics_lib.REQUEST_COUNT in families


def test_each_server_its_own_registry():
  """Many servers in one process: their counts apart, prometheus_client's global one untouched."""
  first, second = Metrics(), Metrics()
  first.request("mnist", "predict", "REST", "OK", 0.001)
  assert _samples(_families(first)[metrics_lib.REQUEST_COUNT])
  assert not _samples(_families(second)[metrics_lib.REQUEST_COUNT])
  assert first.registry is not second.registry
  assert first.registry is not prometheus_client.REGISTRY
  assert b"tensorflow:serving" not in prometheus_client.generate_latest()


def test_counts_from_threads_add_up():
  metrics = Metrics()

  def work():
    for _ in range(500):
      metrics.batch("mnist", 2)
      metrics.request("mnist", "predict", "GRPC", "OK", 0.001)
  threads = [threading.Thread(target=work) for _ in range(4)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  families = _families(metrics)
  assert sum(_samples(families[metrics_lib.REQUEST_COUNT]).values()) == 2000
  assert sum(_samples(families[metrics_lib.BATCH_SIZE], "_count").values()) == 2000


def _get(app, path):
  """A GET through the ASGI app: (status, headers, body)."""
  sent = []

  async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}

  async def send(message):
    sent.append(message)
  scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
           "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
           "root_path": "", "headers": [], "client": ("127.0.0.1", 1), "server": ("x", 80)}
  asyncio.run(app(scope, receive, send))
  start = next(m for m in sent if m["type"] == "http.response.start")
  body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
  return start["status"], dict(start["headers"]), body


def test_endpoint_serves_the_page_through_starlette():
  metrics = Metrics()
  metrics.request("mnist", "predict", "REST", "OK", 0.001)
  app = Starlette(routes=[Route("/monitoring/prometheus/metrics", metrics.endpoint())])
  status, headers, body = _get(app, "/monitoring/prometheus/metrics")
  assert status == 200
  assert headers[b"content-type"] == b"text/plain; version=0.0.4; charset=utf-8"
  (family,) = [f for f in text_string_to_metric_families(body.decode())
               if f.name == metrics_lib.REQUEST_COUNT]
  assert family.samples[0].value == 1
