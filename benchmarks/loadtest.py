"""`make loadtest`: req/s and p50/p99 of single-image predicts, REST and gRPC, batching on/off.

Then one large request (--large_rows images) per server and API: its latency and the server's
RSS before and after.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from absl import app
from absl import flags

from benchmarks import loadtest_grpc
from benchmarks import loadtest_large
from benchmarks import loadtest_metrics
from mnist_estimator.common import cli
from mnist_estimator.common.errors import UsageError

FLAGS = flags.FLAGS
HOST = "127.0.0.1"  # traffic only ever goes to this machine

# wrk (C, epoll) sends the POSTs; this Lua script stops a thread after --requests responses
# and prints one JSON line of results.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open("%(body)s", "rb")
wrk.body = file:read("*a")
file:close()
local count = 0
function response(status, headers, body)
  count = count + 1
  if count >= %(requests)d then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, ' ..
    '"p99_us": %%d, "errors": %%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def define_flags():
  flags.DEFINE_string("saved_model", None, "A TF Serving base path to serve; default: train "
                      "each of --models for 2 steps on the bundled sample and export it.")
  flags.DEFINE_list("models", ["mlp", "cnn"], "Models to train when --saved_model is not given.")
  flags.DEFINE_list("apis", ["rest", "grpc"], "rest (wrk) and/or grpc (an asyncio client).")
  flags.DEFINE_list("clients", ["1", "8", "32"], "Concurrent clients (connections).")
  flags.DEFINE_integer("seconds", 4, "Upper bound of one measurement.", lower_bound=1)
  flags.DEFINE_integer("requests", 100000, "Upper bound of requests in one measurement (wrk "
                       "then idles to the end of --seconds, so req/s reads low if it is hit).",
                       lower_bound=1)
  flags.DEFINE_integer("rounds", 3, "Interleaved rounds; the table shows medians.", lower_bound=1)
  flags.DEFINE_list("server_args", [], "Extra flags for the batching server, e.g. "
                    "--max_batch_size=32,--batch_timeout_micros=500.")
  flags.DEFINE_integer("large_rows", 10000, "Images of the one large gRPC and REST predict per "
                       "server (0: none). The servers get room for it: --max_body_bytes, and "
                       "--max_enqueued_batches=N for batching, unless --server_args sets them.",
                       lower_bound=0)
  flags.DEFINE_string("json_out", None, "Also write every measurement here: {\"load\": "
                      "{model: {api: {mode: {clients: [runs]}}}}, \"large\": {model/mode: "
                      "the large request}}.")
  flags.DEFINE_bool("compare_backends", False, "Instead: time one call of the SavedModel at batch "
                    "1 and 64 through tf.saved_model.load and through a Session (what serves).")
  flags.DEFINE_bool("verbose", False, "Show tracebacks instead of one-line errors.")


def free_port():
  with socket.socket() as sock:
    sock.bind((HOST, 0))
    return sock.getsockname()[1]


def export_model(model, root):
  """Trains `model` for 2 steps on the bundled sample (speed does not depend on the weights)."""
  from mnist_estimator.run import runner  # pylint: disable=g-import-not-at-top
  from mnist_estimator.run.spec import RunSpec  # pylint: disable=g-import-not-at-top
  spec = RunSpec.for_model(model, dataset="mnist_sample", model_dir=os.path.join(root, "m"),
                           steps=2, export_dir=os.path.join(root, "export"), report=False,
                           seed=0)
  runner.run(spec)
  return os.path.join(root, "export")


class ServerProcess:
  """`python -m mnist_estimator.serve` on free 127.0.0.1 ports (REST, gRPC), once it answers."""

  def __init__(self, base, extra_args, log_path):
    self.port, self.grpc_port = free_port(), free_port()
    self.url = f"http://{HOST}:{self.port}"
    self.grpc_target = f"{HOST}:{self.grpc_port}"
    self._log = open(log_path, "w", encoding="utf-8")  # pylint: disable=consider-using-with
    args = [sys.executable, "-m", "mnist_estimator.serve", f"--saved_model={base}",
            f"--host={HOST}", f"--rest_api_port={self.port}", f"--port={self.grpc_port}",
            "--file_system_poll_wait_seconds=0", *extra_args]
    self._process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while True:
      try:
        with urllib.request.urlopen(f"{self.url}/v1/models/mnist", timeout=5):
          return
      except (urllib.error.URLError, ConnectionError):
        if self._process.poll() is not None or time.monotonic() > deadline:
          self.stop()
          raise UsageError(f"the server did not start; see {log_path}") from None
        time.sleep(0.3)

  def rss_mb(self):
    """The server's resident memory now, in MB (Linux /proc)."""
    return loadtest_large.rss_mb(self._process.pid)

  def stop(self):
    self._process.terminate()
    try:
      self._process.wait(20)
    except subprocess.TimeoutExpired:
      self._process.kill()
    self._log.close()


def run_wrk(url, clients, seconds, requests, script):
  """One wrk run: {requests, rps, p50_ms, p99_ms, errors}."""
  wrk = shutil.which("wrk")
  if not wrk:
    raise UsageError("wrk not found: apt-get install -y wrk (Debian's HTTP load generator)")
  per_connection = max(1, requests // clients)  # one wrk thread, `clients` connections
  with open(script["path"], "w", encoding="utf-8") as f:
    f.write(WRK_SCRIPT % {"body": script["body"], "requests": per_connection * clients})
  out = subprocess.run([wrk, "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s",
                        "-s", script["path"], f"{url}/v1/models/mnist:predict"],
                       capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
  line = next(x for x in out.splitlines() if x.startswith("RESULT "))
  result = json.loads(line[len("RESULT "):])
  if result["requests"] >= per_connection * clients:
    print(f"note: the {requests}-request bound ended this run before {seconds} s; its req/s "
          "is a lower bound", flush=True)
  return {"requests": result["requests"],
          "rps": result["requests"] / (result["duration_us"] / 1e6),
          "p50_ms": result["p50_us"] / 1e3, "p99_ms": result["p99_us"] / 1e3,
          "errors": result["errors"]}


def test_image():
  """One real test image from the bundled sample, [28, 28] in 0..1 (3 decimals)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from mnist_estimator.data import datasets  # pylint: disable=g-import-not-at-top
  image = datasets.load("mnist_sample").x_test[0, :, :, 0] / 255.0
  return np.round(image, 3).astype(np.float32)


def write_body(path):
  """The test image as {"instances": [28x28]}."""
  with open(path, "w", encoding="utf-8") as f:
    json.dump({"instances": [[[round(float(v), 3) for v in row] for row in test_image()]]}, f)


def one_run(api, server, clients, seconds, requests, script):
  """One measurement of `server` through `api` ("rest": wrk; "grpc": the asyncio client)."""
  if api == "rest":
    return run_wrk(server.url, clients, seconds, requests, script)
  return loadtest_grpc.run_grpc(server.grpc_target, clients, seconds, requests, script["grpc"])


def measure(servers, apis, clients, rounds, seconds, requests, script):
  """Interleaved rounds over (clients, model, api, mode).

  Args:
    servers: {model: {"batching" | "baseline": ServerProcess}}.

  Returns:
    {model: {api: {mode: {clients: [results]}}}}.
  """
  results = {m: {a: {mode: {c: [] for c in clients} for mode in modes} for a in apis}
             for m, modes in servers.items()}
  for modes in servers.values():
    for server in modes.values():
      for api in apis:
        one_run(api, server, max(clients), 1, 2000, script)  # warm up
  for _ in range(rounds):
    for c in clients:
      for model, modes in servers.items():
        for api in apis:
          for mode, server in modes.items():
            result = _counted_run(api, server, c, seconds, requests, script)
            results[model][api][mode][c].append(result)
            print(f"{model:5s} {api:4s} {mode:9s} clients={c:3d} {result['rps']:8.1f} req/s  "
                  f"p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  errors "
                  f"{result['errors']}", flush=True)
  return results


def _counted_run(api, server, clients, seconds, requests, script):
  """one_run, and the server's request count over it (its Prometheus metrics) checked.

  Raises:
    UsageError: the server's count is not what the client sent.
  """
  before = loadtest_metrics.counted(server.url, api)
  result = one_run(api, server, clients, seconds, requests, script)
  time.sleep(0.2)  # wrk's last in-flight requests are answered
  result["counted"] = loadtest_metrics.counted(server.url, api) - before
  problem = loadtest_metrics.check(api, result, result["counted"], clients)
  if problem:
    raise UsageError(f"metrics check: {problem}")
  return result


def table(results, clients):
  """The markdown table of medians: model, API, batching, one session.run per request, speed-up."""
  med = lambda rs, k: statistics.median(r[k] for r in rs)
  lines = ["| model | API | clients | batching req/s | p50 ms | p99 ms | no batching req/s | "
           "p50 ms | p99 ms | x |", "|---|---|---|---|---|---|---|---|---|---|"]
  for model, apis in results.items():
    for api, modes in apis.items():
      for c in clients:
        on, off = modes["batching"][c], modes["baseline"][c]
        lines.append(
            f"| {model} | {'gRPC' if api == 'grpc' else 'REST'} | {c} | {med(on, 'rps'):,.0f} | "
            f"{med(on, 'p50_ms'):.1f} | {med(on, 'p99_ms'):.1f} | {med(off, 'rps'):,.0f} | "
            f"{med(off, 'p50_ms'):.1f} | {med(off, 'p99_ms'):.1f} | "
            f"{med(on, 'rps') / max(med(off, 'rps'), 1e-9):.1f} |")
  return "\n".join(lines)


def compare_backends(base, rounds):
  """Median ms per call of serving_default, tf.saved_model.load vs Session.make_callable."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mnist_estimator import runtime  # pylint: disable=g-import-not-at-top
  from mnist_estimator.common import saved_model  # pylint: disable=g-import-not-at-top
  path = saved_model.newest(base)
  function = tf.saved_model.load(path).signatures["serving_default"]
  session = runtime.load(path).signatures["serving_default"]
  calls = {"tf.saved_model.load": lambda x: [v.numpy() for v in function(
               images=tf.constant(x)).values()],
           "Session.make_callable": lambda x: session.run({"images": x})}
  times = {(name, n): [] for name in calls for n in (1, 64)}
  for _ in range(rounds):
    for n in (1, 64):
      x = np.random.default_rng(0).random([n, 28, 28], np.float32)
      for name, call in calls.items():
        call(x)
        reps = 100 if n == 1 else 10
        start = time.perf_counter()
        for _ in range(reps):
          call(x)
        times[name, n].append((time.perf_counter() - start) / reps * 1e3)
  print("\n| call | batch 1 ms | batch 64 ms |\n|---|---|---|")
  for name in calls:
    print(f"| {name} | {statistics.median(times[name, 1]):.2f} | "
          f"{statistics.median(times[name, 64]):.2f} |")


def main(argv):
  del argv  # unused
  with cli.one_line_errors(FLAGS.verbose):
    models = ["saved_model"] if FLAGS.saved_model else FLAGS.models
    if FLAGS.compare_backends:
      with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
        model = "cnn" if "cnn" in models else models[0]
        compare_backends(FLAGS.saved_model or export_model(model, tmp), FLAGS.rounds)
      return
    apis = [a.lower() for a in FLAGS.apis]
    if not apis or set(apis) - {"rest", "grpc"}:
      raise UsageError(f"--apis={','.join(FLAGS.apis)}: give rest, grpc or rest,grpc")
    clients = [int(c) for c in FLAGS.clients]
    bodies = loadtest_large.large_bodies(FLAGS.large_rows) if FLAGS.large_rows else None
    with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
      script = {"path": os.path.join(tmp, "post.lua"), "body": os.path.join(tmp, "body.json"),
                "grpc": loadtest_grpc.predict_request_bytes(test_image())}
      write_body(script["body"])
      servers, large = {}, {}
      try:
        for model in models:
          servers[model] = _servers(model, tmp, bodies)
        results = measure(servers, apis, clients, FLAGS.rounds, FLAGS.seconds, FLAGS.requests,
                          script)
        for model, modes in servers.items():
          for mode, server in modes.items():
            if bodies:
              large[model, mode] = loadtest_large.large_request(server, bodies)
      finally:
        for modes in servers.values():
          for server in modes.values():
            server.stop()
    _report(results, clients, large)


def _servers(model, tmp, bodies):
  """{"batching": with --server_args, "baseline": --noenable_batching} of one model."""
  base = FLAGS.saved_model or export_model(model, os.path.join(tmp, model))
  metrics = loadtest_metrics.monitoring_args(tmp)
  on = FLAGS.server_args + loadtest_large.room_for(bodies, FLAGS.server_args) + metrics
  off = ["--noenable_batching"] + loadtest_large.room_for(bodies, [], batching=False) + metrics
  return {"batching": ServerProcess(base, on, os.path.join(tmp, f"{model}-on.log")),
          "baseline": ServerProcess(base, off, os.path.join(tmp, f"{model}-off.log"))}


def _report(results, clients, large):
  print(f"\nmedians of {FLAGS.rounds} interleaved rounds, each <= {FLAGS.seconds:g} s and "
        f"<= {FLAGS.requests} requests, single 28x28 images, on {HOST} (REST: wrk; gRPC: "
        "a Python asyncio client):\n")
  print(table(results, clients))
  runs = [r for apis in results.values() for modes in apis.values() for by_clients in
          modes.values() for rs in by_clients.values() for r in rs]
  print(f"\nmetrics check: in all {len(runs)} measurements the servers' "
        f"{loadtest_metrics.REQUEST_COUNT} equals the requests the clients sent (REST: plus "
        f"up to one in flight per wrk connection; {sum(r['counted'] for r in runs):,.0f} "
        "counted)")
  if large:
    print(f"\none request of {FLAGS.large_rows:,} random 28x28 images per server, gRPC then "
          "REST, and the server's resident memory:\n")
    print(loadtest_large.large_table(large, FLAGS.large_rows))
  if FLAGS.json_out:
    with open(FLAGS.json_out, "w", encoding="utf-8") as f:
      json.dump({"load": results, "large": {f"{m}/{mode}": r for (m, mode), r in large.items()}},
                f, indent=1)


def run():
  """`python -m benchmarks.loadtest`."""
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
