"""`make loadtest`'s metrics check: the servers' Prometheus request counts against the clients'."""

import os
import urllib.request

PATH = "/monitoring/prometheus/metrics"
REQUEST_COUNT = ":tensorflow:serving:request_count"


def monitoring_args(tmp):
  """The server flag that turns on its metrics page at PATH (a MonitoringConfig file in tmp)."""
  path = os.path.join(tmp, "monitoring.config")
  with open(path, "w", encoding="utf-8") as f:
    f.write(f'prometheus_config {{ enable: true path: "{PATH}" }}\n')
  return [f"--monitoring_config_file={path}"]


def counted(url, api):
  """Predicts the server at `url` has counted through `api` ("rest" or "grpc"), any status."""
  from prometheus_client.parser import text_string_to_metric_families  # pylint: disable=g-import-not-at-top
  with urllib.request.urlopen(url + PATH, timeout=30) as response:
    text = response.read().decode()
  entrypoint = "GRPC" if api == "grpc" else "REST"
  return sum(sample.value for family in text_string_to_metric_families(text)
             if family.name == REQUEST_COUNT for sample in family.samples
             if sample.labels.get("API") == "predict"
             and sample.labels.get("entrypoint") == entrypoint)


def check(api, result, counted_delta, clients):
  """None if the server counted the requests the client sent, else what differs.

  The gRPC client awaits every call, so the counts are equal; wrk stops with up to one request
  per connection in flight, which the server may have answered after wrk stopped counting.
  """
  answered = result["requests"] + (result["errors"] if api == "grpc" else 0)
  slack = 0 if api == "grpc" else clients
  if answered <= counted_delta <= answered + slack:
    return None
  return (f"the server counted {counted_delta:.0f} {api} predicts, the client {answered} "
          f"(allowed: up to {slack} more)")
