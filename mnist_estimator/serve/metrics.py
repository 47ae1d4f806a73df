"""Prometheus metrics of one server, under TF Serving's names where it has them."""

import bisect
import threading
from typing import (TYPE_CHECKING, Any, Awaitable, Callable, Dict, Iterable, List, Mapping,
                    Optional, Sequence, Tuple, Union)

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (GaugeMetricFamily, HistogramMetricFamily,
                                            UnknownMetricFamily)
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:  # for the hints only
  from starlette.requests import Request
  from starlette.responses import Response

# The text format TF Serving's exporter writes (prometheus_client's newest default is 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# TF Serving's /tensorflow/serving/x metrics as its exporter names them (prometheus_exporter.cc).
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
QUEUING_LATENCY = ":tensorflow:serving:batching_session:queuing_latency"
# Ours: TF Serving has no such metrics.
QUEUE_ROWS = "mnist_estimator_serve_batch_queue_rows"
VERSIONS = "mnist_estimator_serve_model_versions_available"


def _exponential(scale: float, growth: float, count: int) -> Tuple[float, ...]:
  """TF's monitoring::Buckets::Exponential limits, printed as its exporter does (6 digits)."""
  return tuple(float(f"{scale * growth ** i:.6g}") for i in range(count))


# TF Serving's buckets: util.cc (latency, microseconds), batching_util.h (rows) and
# batching_session.cc (queuing, microseconds); a +Inf bucket follows each.
_LATENCY_US = _exponential(10, 1.8, 33)
_ROWS = _exponential(1, 2, 14)
_QUEUING_US = _exponential(100, 1.2, 52)

QueueLength = Callable[[], Union[float, Mapping[str, float]]]


class _Histogram:
  """Bucket counts and sums by label values, for HistogramMetricFamily at scrape time."""

  def __init__(self, limits: Sequence[float]) -> None:
    self.limits = limits
    # label values -> [bucket counts (+Inf last), sum]
    self.cells: Dict[Tuple[str, ...], List[Any]] = {}

  def add(self, labels: Tuple[str, ...], value: float) -> None:
    cell = self.cells.setdefault(labels, [[0] * (len(self.limits) + 1), 0.0])
    cell[0][bisect.bisect_left(self.limits, value)] += 1  # Prometheus' le: value <= limit
    cell[1] += value

  def family(self, name: str, documentation: str,
             label_names: Sequence[str]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=label_names)
    bounds = [floatToGoString(limit) for limit in self.limits] + ["+Inf"]
    for labels, (counts, total) in sorted(self.cells.items()):
      cumulative, buckets = 0, []
      for bound, count in zip(bounds, counts):
        cumulative += count
        buckets.append((bound, cumulative))
      family.add_metric(labels, buckets, total)
    return family


class Metrics:
  """The metrics of one server, in a registry of its own (never prometheus_client's global one).

  TF Serving's metrics keep its names, units (microseconds) and buckets, with labels added:
  request_count {model_name, API, entrypoint, status} (TF Serving's has model_name and status:
  sum by those for its series), request_latency {model_name, API, entrypoint}, the batching
  ones {model_name} (TF Serving's have none). request_count is untyped: prometheus_client
  writes any counter as NAME_total, and the name TF Serving's queries use matters more.

  Thread-safe: requests are counted on the event loop, batches may be counted in their threads.

  Attributes:
    registry: the prometheus_client.CollectorRegistry holding this server's metrics.
  """

  def __init__(self, queue_length: Optional[QueueLength] = None):
    """Makes the metrics and their registry.

    Args:
      queue_length: called at each scrape: the rows waiting in the batch queue, a number for
        the whole server or {model name: rows}; None: no queue gauge (batching off).
    """
    self._queue_length = queue_length
    self._lock = threading.Lock()
    # (model_name, API, entrypoint, status) -> requests
    self._counts: Dict[Tuple[str, str, str, str], int] = {}
    self._latency = _Histogram(_LATENCY_US)
    self._batch_rows = _Histogram(_ROWS)
    self._queuing = _Histogram(_QUEUING_US)
    self._versions: Dict[str, int] = {}  # model_name -> versions served
    self.registry = CollectorRegistry(auto_describe=False)
    self.registry.register(self)

  def request(self, model: str, api: str, entrypoint: str, code: str, seconds: float) -> None:
    """Counts one request; times it if it succeeded (TF Serving times only those).

    Args:
      model: the model name the request asked for.
      api: the API, e.g. "predict", "classify", "regress", "multi_inference",
        "get_model_metadata", "get_model_status".
      entrypoint: "GRPC" or "REST" (TF Serving's names).
      code: the canonical status code's name: "OK", "INVALID_ARGUMENT", "NOT_FOUND", ...
      seconds: the time from receipt to answer.
    """
    key = (model, api, entrypoint, code)
    with self._lock:
      self._counts[key] = self._counts.get(key, 0) + 1
      if code == "OK":
        self._latency.add((model, api, entrypoint), seconds * 1e6)

  def batch(self, model: str, rows: int, queued_seconds: Iterable[float] = ()) -> None:
    """Records one batch run: its rows, and how long each of its requests waited in the queue.

    Args:
      model: the model name whose signature ran.
      rows: the rows of the batch (all its requests' rows together).
      queued_seconds: each request's time from enqueued to the batch's start.
    """
    with self._lock:
      self._batch_rows.add((model,), rows)
      for seconds in queued_seconds:
        self._queuing.add((model,), seconds * 1e6)

  def versions(self, model: str, n: int) -> None:
    """Sets the number of versions of `model` served now (0: none)."""
    with self._lock:
      self._versions[model] = n

  def forget(self, model: str) -> None:
    """Drops `model`'s versions gauge (a model no longer configured); its counts stay."""
    with self._lock:
      self._versions.pop(model, None)

  def exposition(self) -> Tuple[bytes, str]:
    """The Prometheus text page and its content type (text format 0.0.4, as TF Serving)."""
    return generate_latest(self.registry), CONTENT_TYPE

  def endpoint(self) -> Callable[["Request"], Awaitable["Response"]]:
    """A Starlette endpoint answering the page: `Route(path, metrics.endpoint())`."""
    from starlette.responses import Response  # pylint: disable=import-outside-toplevel

    async def metrics_page(request: "Request") -> "Response":  # pylint: disable=unused-argument
      body, content_type = self.exposition()
      return Response(body, headers={"content-type": content_type})
    return metrics_page

  def collect(self) -> List[Any]:
    """The families at scrape time (prometheus_client's Collector protocol; the registry's)."""
    with self._lock:
      counts = UnknownMetricFamily(
          REQUEST_COUNT, "The total number of requests.",
          labels=["model_name", "API", "entrypoint", "status"])
      for labels, n in sorted(self._counts.items()):
        counts.add_metric(labels, n)
      families = [
          counts,
          self._latency.family(
              REQUEST_LATENCY, "Distribution of wall time (in microseconds) for Tensorflow "
              "Serving request.", ["model_name", "API", "entrypoint"]),
          self._batch_rows.family(
              BATCH_SIZE, "Tracks the batch size distribution on processing.", ["model_name"]),
          self._queuing.family(
              QUEUING_LATENCY, "Distribution of wall time spent (in microseconds) in queuing",
              ["model_name"]),
          self._versions_family()]
    families.extend(self._queue_family())
    return families

  def _versions_family(self) -> GaugeMetricFamily:
    family = GaugeMetricFamily(VERSIONS, "The versions of the model served now.",
                               labels=["model_name"])
    for model, n in sorted(self._versions.items()):
      family.add_metric([model], n)
    return family

  def _queue_family(self) -> List[GaugeMetricFamily]:
    """The queue gauge from the callback, outside the lock (it reads the batcher)."""
    if self._queue_length is None:
      return []
    try:
      value = self._queue_length()
    except Exception:  # pylint: disable=broad-except  # a scrape shows the rest, not a 500
      return []
    documentation = "Rows waiting in the batch queue now."
    if isinstance(value, Mapping):
      family = GaugeMetricFamily(QUEUE_ROWS, documentation, labels=["model_name"])
      for model, rows in sorted(value.items()):
        family.add_metric([model], rows)
      return [family]
    return [GaugeMetricFamily(QUEUE_ROWS, documentation, value=value)]
