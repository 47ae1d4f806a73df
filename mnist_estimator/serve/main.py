"""`python -m mnist_estimator.serve`: TF Serving's gRPC and REST APIs and a draw-a-digit page."""

import sys
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional, Sequence, Tuple

from mnist_estimator.common import cli  # pylint: disable=g-import-not-at-top

cli.import_tensorflow()  # first: its start-up lines go to the run log, not the console

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from mnist_estimator.common.errors import UsageError
from mnist_estimator.serve import app as app_lib
from mnist_estimator.serve import batching
from mnist_estimator.serve import config as config_lib
from mnist_estimator.serve import grpc_service
from mnist_estimator.serve import monitoring
from mnist_estimator.serve import server

if TYPE_CHECKING:  # for the hints only
  from starlette.types import ASGIApp

  from mnist_estimator.serve.manager import ModelManager

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The server's flags (TF Serving's names where it has one)."""
  flags.DEFINE_string("model_dir", None, "A training model_dir: serves DIR/export/best "
                      "(else its newest export).")
  flags.DEFINE_string("model_base_path", None, "A TF Serving base path of numbered SavedModel "
                      "versions (e.g. an --export_dir), or one SavedModel directory. May be "
                      "empty or missing at start: its versions are served as they appear.")
  flags.DEFINE_string("saved_model", None, "The same as --model_base_path.")
  flags.DEFINE_string("model_config_file", None, "Several models: TF Serving's text-format "
                      "ModelServerConfig (model_config_list { config { name base_path "
                      "model_version_policy version_labels } }).")
  flags.DEFINE_float("model_config_file_poll_wait_seconds", 0, "How often to read "
                     "--model_config_file again and apply it when it changed (0: never).",
                     lower_bound=0)
  flags.DEFINE_bool("allow_version_labels_for_unavailable_models", False, "Let a version label "
                    "name a version that is not (yet) served.")
  flags.DEFINE_string("model_file", None, "A .tflite or .onnx file of --export_format, "
                      "served as its one version by TFLite or onnxruntime.")
  flags.DEFINE_string("model_name", "mnist", "The model's name in /v1/models/NAME (not with "
                      "--model_config_file, which names its models).")
  flags.DEFINE_string("host", "127.0.0.1", "Address to listen on.")
  flags.DEFINE_integer("port", 8500, "Port of the gRPC API (TF Serving's --port; 0: no gRPC).",
                       lower_bound=0, upper_bound=65535)
  flags.DEFINE_integer("rest_api_port", 8501, "Port of the REST API and the page (TF Serving's "
                       "--rest_api_port; 0: no REST).", lower_bound=0, upper_bound=65535)
  flags.DEFINE_integer("grpc_max_threads", grpc_service.DEFAULT_MAX_THREADS, "gRPC calls handled "
                       "at once (TF Serving's default: 4 per CPU); more wait their turn.",
                       lower_bound=1)
  flags.DEFINE_float("file_system_poll_wait_seconds", 1.0, "How often to read the base paths "
                     "and load or unload versions as they appear or go (0: never).",
                     lower_bound=0)
  flags.DEFINE_bool("enable_batching", True, "Batch concurrent requests.")
  flags.DEFINE_integer("max_batch_size", 64, "Rows in one batch.", lower_bound=1)
  flags.DEFINE_integer("batch_timeout_micros", 1000, "How long a batch waits to fill.",
                       lower_bound=0)
  flags.DEFINE_integer("max_enqueued_batches", 100, "Queue bound, in batches (503 past it).",
                       lower_bound=1)
  flags.DEFINE_bool("enable_large_batch_splitting", True, "Cut a request of more than "
                    "--max_batch_size rows into pieces of that size that queue like requests "
                    "(all must fit the queue, else 503, unless the queue is empty); false "
                    "refuses it as TF Serving does: 400 'Task size N is larger than maximum "
                    "input batch size M'.")
  flags.DEFINE_integer("num_batch_threads", 2, "Threads running batches (or single requests "
                       "with --noenable_batching).", lower_bound=1)
  flags.DEFINE_string("monitoring_config_file", None, "TF Serving's text-format "
                      "MonitoringConfig: prometheus_config { enable: true path: "
                      "'/monitoring/prometheus/metrics' } shows the metrics on the REST port.")
  flags.DEFINE_bool("rest_api_enable_cors_support", False, "Add CORS headers to REST answers "
                    "(Access-Control-Allow-Origin: *), so a page on another origin may call it.")
  flags.DEFINE_integer("max_body_bytes", app_lib.DEFAULT_MAX_BODY_BYTES, "Larger REST bodies "
                       "get 413 before they are read, larger gRPC messages RESOURCE_EXHAUSTED "
                       "(TF Serving takes gRPC messages up to 2 GiB).", lower_bound=1)
  flags.DEFINE_integer("tensorflow_intra_op_parallelism", 0, "Threads inside one op (0: TF "
                       "picks).", lower_bound=0)
  flags.DEFINE_integer("tensorflow_inter_op_parallelism", 0, "Ops run at once (0: TF picks).",
                       lower_bound=0)
  cli.define_verbose()


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  with cli.one_line_errors(FLAGS.verbose):
    cli.quiet_tensorflow()
    ports = server.Ports(FLAGS.host, FLAGS.port or None, FLAGS.rest_api_port,
                         FLAGS.grpc_max_threads, FLAGS.max_body_bytes)
    _check_ports(ports)
    sockets = [server.listen(ports.host, ports.rest)] if ports.rest else None
    asgi, manager, batcher = _build(_models(), _metrics_path(ports))
    watcher = None
    if FLAGS.model_config_file:
      watcher = config_lib.FileWatcher(FLAGS.model_config_file,
                                       FLAGS.model_config_file_poll_wait_seconds, manager.reload)
      watcher.start()

    def started(grpc_port: Optional[int], stop: Callable[..., None]) -> None:
      del stop  # SIGINT and SIGTERM stop the server
      where = [f"gRPC on {ports.host}:{grpc_port}"] if grpc_port else []
      if ports.rest:
        where.append(f"REST and the page on http://{_url_host(ports.host)}:{ports.rest}/")
      for line in _serving_lines(manager):
        print(line, flush=True)
      print(f"listening: {', '.join(where)}", flush=True)
    try:
      server.run(asgi, manager, batcher, ports, sockets, started)
    finally:
      if watcher:
        watcher.stop()
      manager.stop()


def _build(
    models: List[config_lib.ModelConfig], metrics_path: Optional[str],
) -> Tuple["ASGIApp", "ModelManager", batching.Batcher]:
  """server.build with the flags' batching, threads and options."""
  options = batching.BatchOptions(FLAGS.max_batch_size, FLAGS.batch_timeout_micros,
                                  FLAGS.max_enqueued_batches, FLAGS.num_batch_threads,
                                  FLAGS.enable_large_batch_splitting)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  session_config = tf.compat.v1.ConfigProto(
      intra_op_parallelism_threads=FLAGS.tensorflow_intra_op_parallelism,
      inter_op_parallelism_threads=FLAGS.tensorflow_inter_op_parallelism)
  return server.build(
      poll_seconds=FLAGS.file_system_poll_wait_seconds,
      batch_options=options if FLAGS.enable_batching else None,
      threads=FLAGS.num_batch_threads, max_body_bytes=FLAGS.max_body_bytes,
      session_config=session_config, models=models,
      allow_labels_for_unavailable=FLAGS.allow_version_labels_for_unavailable_models,
      cors=FLAGS.rest_api_enable_cors_support, metrics_path=metrics_path)


def _metrics_path(ports: server.Ports) -> Optional[str]:
  """Where --monitoring_config_file shows the metrics on REST (None: nowhere).

  Raises:
    UsageError: the file is bad, or asks for metrics with REST turned off.
  """
  if not FLAGS.monitoring_config_file:
    return None
  path = monitoring.read_file(FLAGS.monitoring_config_file).prometheus_path
  if path and not ports.rest:
    raise UsageError("--monitoring_config_file shows the metrics on the REST port, and "
                     "--rest_api_port=0 turns it off: give a REST port")
  return path


def _models() -> List[config_lib.ModelConfig]:
  """The models to serve: --model_config_file's, or the one model of the other flags.

  Raises:
    UsageError: no model, or more than one way to name them.
  """
  given = [f"--{k}" for k in ("model_config_file", "model_base_path", "saved_model",
                               "model_dir", "model_file") if FLAGS[k].value]
  if FLAGS["model_name"].present:
    given.append("--model_name")
  if FLAGS.model_config_file:
    if len(given) > 1:
      raise UsageError(f"pass --model_config_file alone, without {', '.join(given[1:])}: it "
                       "names every model and its base path")
    return config_lib.read_file(FLAGS.model_config_file)
  if FLAGS.model_base_path and FLAGS.saved_model:
    raise UsageError("pass --model_base_path or --saved_model (the same flag), not both")
  base = server.base_path(FLAGS.model_dir, FLAGS.model_base_path or FLAGS.saved_model,
                          FLAGS.model_file)
  return config_lib.single(FLAGS.model_name, base)


def _serving_lines(manager: "ModelManager") -> Iterator[str]:
  """A line per model: its versions served and where from, or that it waits for one."""
  for model in manager.models():
    served = manager.served_versions(model.name)
    if served:
      what = "version" + ("s " if len(served) > 1 else " ") + ", ".join(map(str, served))
      yield f"serving {model.name} ({what}) from {model.base_path}"
    else:
      yield (f"serving {model.name}: no version in {model.base_path} yet; NOT_FOUND until one "
             f"appears ({model.policy.describe()} is served)")


def _check_ports(ports: server.Ports) -> None:
  if not ports.grpc and not ports.rest:
    raise UsageError("--port=0 and --rest_api_port=0 turn off both APIs: keep one of them")
  if ports.grpc == ports.rest:
    raise UsageError(f"--port (gRPC) and --rest_api_port (REST) are both {ports.rest}: give "
                     "them different ports (TF Serving's 8500 and 8501)")


def _url_host(host: str) -> str:
  return f"[{host}]" if ":" in host else host


def run() -> None:
  """Console script `mnist-estimator-serve`."""
  define_flags()
  app.run(main, flags_parser=cli.flags_parser(
      lambda: cli.module_help(__doc__ or "", sys.modules[__name__], cli)))


if __name__ == "__main__":
  run()
