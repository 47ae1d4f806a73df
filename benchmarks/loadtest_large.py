"""The load test's large request: one predict of many images, its latency, the server's RSS."""

import json
import time
import urllib.request

from benchmarks import loadtest_grpc
from mnist_estimator.common.errors import UsageError


def rss_mb(pid):
  """Resident memory of process `pid`, in MB (VmRSS of /proc/PID/status)."""
  with open(f"/proc/{pid}/status", encoding="utf-8") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024
  raise UsageError(f"no VmRSS for process {pid}: the large-request row needs Linux's /proc")


def large_bodies(rows):
  """{"json": REST body, "grpc": PredictRequest bytes, "rows"} of `rows` seeded random images."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  x = np.round(np.random.default_rng(0).random([rows, 28, 28], np.float32), 3)
  return {"json": json.dumps({"instances": x.tolist()}).encode(),
          "grpc": loadtest_grpc.predict_request_bytes(x), "rows": rows}


def room_for(bodies, server_args, batching=True):
  """Flags letting a server take the large request (none the user set in --server_args).

  Args:
    bodies: large_bodies' answer, or None (no large request: no flags).
    server_args: the server's other flags.
    batching: the server batches (its queue must hold the request's rows).
  """
  if not bodies:
    return []
  given = {a.split("=", 1)[0].lstrip("-") for a in server_args}
  extra = []
  if "max_body_bytes" not in given:
    largest = max(len(bodies["json"]), len(bodies["grpc"]))
    extra.append(f"--max_body_bytes={largest + (1 << 20)}")
  if batching and "max_enqueued_batches" not in given:
    # max_batch_size >= 1, so a queue of `rows` batches holds all the request's pieces.
    extra.append(f"--max_enqueued_batches={bodies['rows']}")
  return extra


def large_request(server, bodies, settle=2.0):
  """One large gRPC, then REST, predict: seconds each, the server's RSS around them (MB).

  Args:
    server: has url, grpc_target and rss_mb() (a ServerProcess).
    bodies: large_bodies' answer.
    settle: seconds between the REST answer and the last RSS reading.
  """
  before = server.rss_mb()
  grpc_s = loadtest_grpc.predict_once(server.grpc_target, bodies["grpc"])
  after_grpc = server.rss_mb()
  request = urllib.request.Request(f"{server.url}/v1/models/mnist:predict", bodies["json"],
                                   {"Content-Type": "application/json"})
  start = time.perf_counter()
  with urllib.request.urlopen(request, timeout=600) as response:
    response.read()
  rest_s = time.perf_counter() - start
  after = server.rss_mb()
  time.sleep(settle)
  return {"grpc_s": grpc_s, "rest_s": rest_s, "rss_before_mb": before,
          "rss_after_grpc_mb": after_grpc, "rss_after_mb": after,
          "rss_settled_mb": server.rss_mb()}


def large_table(results, rows, settle=2.0):
  """The markdown table of the large requests: {(model, mode): large_request's answer}."""
  lines = [f"| model | batching | rows | gRPC s | REST s | RSS before MB | after gRPC MB | "
           f"after REST MB | +{settle:g} s MB |", "|---|---|---|---|---|---|---|---|---|"]
  for (model, mode), r in results.items():
    lines.append(f"| {model} | {'on' if mode == 'batching' else 'off'} | {rows:,} | "
                 f"{r['grpc_s']:.2f} | {r['rest_s']:.2f} | {r['rss_before_mb']:.0f} | "
                 f"{r['rss_after_grpc_mb']:.0f} | {r['rss_after_mb']:.0f} | "
                 f"{r['rss_settled_mb']:.0f} |")
  return "\n".join(lines)
