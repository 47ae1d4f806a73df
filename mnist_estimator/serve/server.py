"""Building the server (manager, batcher, app) and running it with uvicorn, also in a thread."""

import asyncio
import dataclasses
import os
import signal
import socket
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

import uvicorn
from starlette.types import ASGIApp

from mnist_estimator.common import saved_model as saved_model_lib
from mnist_estimator.common.errors import UsageError
from mnist_estimator.serve import app as app_lib
from mnist_estimator.serve import batching
from mnist_estimator.serve import config as config_lib
from mnist_estimator.serve import grpc_service
from mnist_estimator.serve import health
from mnist_estimator.serve import manager as manager_lib
from mnist_estimator.serve import metrics as metrics_lib
from mnist_estimator.serve import servable as servable_lib
from mnist_estimator.serve import status

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.serve.servable import Servable

# started(the bound gRPC port or None, a stop() any thread may call): the server listens.
Started = Callable[[Optional[int], Callable[..., None]], Any]


def base_path(model_dir: Optional[str] = None, saved_model: Optional[str] = None,
              model_file: Optional[str] = None) -> str:
  """The TF Serving base path to serve: --saved_model, else model_dir's best (or newest) export.

  Or --model_file, a .tflite or .onnx file.

  Raises:
    UsageError: neither is given, or model_dir has no export.
  """
  if model_file:
    if model_dir or saved_model:
      raise UsageError("pass --model_file alone, without --model_dir or --saved_model")
    if not servable_lib.is_model_file(model_file) or not os.path.isfile(model_file):
      raise UsageError(f"--model_file={model_file} is not a .tflite or .onnx file; export one "
                       "with --mode=export --export_format=tflite,onnx")
    return model_file
  if saved_model:
    return saved_model
  if not model_dir:
    raise UsageError("pass --model_dir=DIR (serves DIR/export/best) or --saved_model=BASE "
                     "(a directory of numbered SavedModel versions)")
  export_root = os.path.join(model_dir, "export")
  best = os.path.join(export_root, "best")
  if saved_model_lib.versions(best):
    return best
  bases = [os.path.join(export_root, n) for n in sorted(saved_model_lib.listdir(export_root))]
  bases = [b for b in bases if saved_model_lib.versions(b)]
  if not bases:
    raise UsageError(f"no export in {export_root}: train with --mode=train_and_evaluate (it "
                     "exports to export/best), or pass --saved_model=YOUR_EXPORT_DIR")
  return max(bases, key=lambda b: max(saved_model_lib.versions(b)))


def build(base: Optional[str] = None, model_name: str = "mnist", poll_seconds: float = 1.0,
          batch_options: Optional[batching.BatchOptions] = None, threads: int = 2,
          max_body_bytes: int = app_lib.DEFAULT_MAX_BODY_BYTES,
          session_config: Optional[Any] = None,
          models: Optional[Sequence[config_lib.ModelConfig]] = None,
          allow_labels_for_unavailable: bool = False, cors: bool = False,
          metrics_path: Optional[str] = None,
          ) -> Tuple[ASGIApp, manager_lib.ModelManager, batching.Batcher]:
  """(app, manager, batcher) serving `base` as `model_name`, or `models`; polling has started.

  `base` is a TF Serving base path (numbered SavedModels) or a .tflite/.onnx file; `models`
  (config.ModelConfig, e.g. from a --model_config_file) replace it. The manager's `metrics`
  count every request, batch and version; `metrics_path` shows them to Prometheus on REST.

  Raises:
    UsageError: a version label names a version that is not served.
  """
  if models is None:
    assert base is not None, "a base path, or models"
    models = config_lib.single(model_name, base)
  manager = manager_lib.ModelManager(poll_seconds=poll_seconds, session_config=session_config,
                                     models=models,
                                     allow_labels_for_unavailable=allow_labels_for_unavailable)
  batcher: Optional[batching.Batcher] = None
  metrics = metrics_lib.Metrics(queue_length=lambda: batcher.queued_rows if batcher else 0)
  manager.metrics = metrics
  manager.add_listener(lambda: _count_versions(manager, metrics))
  try:
    manager.start()
  except status.ApiError as e:
    raise UsageError(e.message) from e
  _count_versions(manager, metrics)
  batcher = batching.Batcher(batch_options, threads, observer=_BatchObserver(metrics))
  app = app_lib.make_app(manager, batcher, max_body_bytes, cors, metrics, metrics_path)
  return app, manager, batcher


def _count_versions(manager: manager_lib.ModelManager, metrics: metrics_lib.Metrics) -> None:
  """The versions-available gauge of each model (removed models leave it)."""
  names = set(manager.names())
  for name in names:
    metrics.versions(name, len(manager.served_versions(name)))
  for name in manager.known_names() - names:
    metrics.forget(name)


class _BatchObserver:
  """The batcher's rows per batch, to the metrics, by the model of the batch's servable."""

  def __init__(self, metrics: metrics_lib.Metrics) -> None:
    self._metrics = metrics

  def batch(self, servable: "Servable", rows: int) -> None:
    self._metrics.batch(getattr(servable, "model_name", ""), rows)


def uvicorn_config(app: ASGIApp, host: str = "127.0.0.1", port: int = 8501,
                   **kwargs: Any) -> uvicorn.Config:
  """uvicorn with httptools and uvloop ("auto" picks them when installed), no access log."""
  return uvicorn.Config(app, host=host, port=port, loop="auto", http="auto",
                        access_log=False, log_level="warning", backlog=2048,
                        timeout_keep_alive=30, proxy_headers=False, **kwargs)


@dataclasses.dataclass
class Ports:
  """Where to listen: TF Serving's --port (gRPC) and --rest_api_port; 0 turns one off.

  grpc: None is no gRPC; 0 a free port (BackgroundServer).
  """
  host: str = "127.0.0.1"
  grpc: Optional[int] = 8500
  rest: int = 8501
  grpc_max_threads: int = grpc_service.DEFAULT_MAX_THREADS
  max_message_bytes: int = app_lib.DEFAULT_MAX_BODY_BYTES


async def serve(app: ASGIApp, manager: Optional[manager_lib.ModelManager],
                batcher: Optional[batching.Batcher], ports: Ports,
                rest_sockets: Optional[List[socket.socket]] = None,
                started: Optional[Started] = None) -> None:
  """Serves REST (uvicorn) and gRPC (grpc.aio) in this event loop until SIGINT/SIGTERM.

  Both hand their requests to the one `manager` and `batcher`. Once both listen,
  `started(grpc_port, stop)` is called with the bound gRPC port (None if off) and a function
  any thread may call to stop serving.

  Raises:
    UsageError: a port cannot be bound.
  """
  loop = asyncio.get_running_loop()
  stopped = asyncio.Event()
  grpc_server: Any = None
  bound: Optional[int] = None
  if ports.grpc is not None:
    grpc_server, bound = await _start_grpc(manager, batcher, ports)
  rest_server = None
  if rest_sockets:
    rest_server = uvicorn.Server(uvicorn_config(app, ports.host, ports.rest))

  def stop(*_: Any) -> None:
    loop.call_soon_threadsafe(stopped.set)
    if rest_server is not None:
      rest_server.should_exit = True
  # Ours around uvicorn's own (which re-raises the signal once it has shut down): the process
  # then stops gRPC too and exits 0.
  handlers: Dict[signal.Signals, Any] = {}
  if threading.current_thread() is threading.main_thread():
    handlers = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
  try:
    if rest_server is None:
      if started:
        started(bound, stop)
      await stopped.wait()
    else:
      await _serve_rest(rest_server, rest_sockets, lambda: started and started(bound, stop))
  finally:
    if grpc_server is not None:
      if hasattr(grpc_server, "health"):
        grpc_server.health.shutdown()  # NOT_SERVING first: load balancers stop sending
      await grpc_server.stop(grace=5)
    for sig, handler in handlers.items():
      signal.signal(sig, handler)


async def _start_grpc(manager: Optional[manager_lib.ModelManager],
                      batcher: Optional[batching.Batcher], ports: Ports) -> Tuple[Any, int]:
  """(the started grpc.aio server, its bound port).

  Without a manager or batcher (a test of the port's refusal) its RPCs cannot be answered.
  """
  grpc_server = grpc_service.make_server(cast(manager_lib.ModelManager, manager),
                                         cast(batching.Batcher, batcher),
                                         ports.grpc_max_threads, ports.max_message_bytes,
                                         getattr(manager, "metrics", None))
  if manager is not None:  # the standard health service, answered from the models served
    checker = health.add_to_server(grpc_server, manager)
    manager.add_listener(checker.changed)
    grpc_server.health = checker
  try:
    bound = grpc_server.add_insecure_port(f"{ports.host}:{ports.grpc}")
  except RuntimeError:
    bound = 0
  if not bound:
    raise UsageError(f"cannot listen for gRPC on {ports.host}:{ports.grpc} (in use?): pass "
                     "another --port, or --port=0 to turn gRPC off")
  await grpc_server.start()
  return grpc_server, bound


async def _serve_rest(rest_server: uvicorn.Server, sockets: Optional[List[socket.socket]],
                      on_started: Callable[[], Any]) -> None:
  """Runs uvicorn until it exits, calling on_started() once it listens."""
  task = asyncio.ensure_future(rest_server.serve(sockets=sockets))
  while not rest_server.started and not task.done():
    await asyncio.sleep(0.02)
  if rest_server.started:
    on_started()
  await task


def listen(host: str, port: int) -> socket.socket:
  """A socket listening on host:port for REST (bound here, so a busy port is one clear line).

  Raises:
    UsageError: the port cannot be bound.
  """
  sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  try:
    sock.bind((host, port))
  except OSError as e:
    sock.close()
    raise UsageError(f"cannot listen for REST on {host}:{port} ({e.strerror}): pass another "
                     "--rest_api_port, or --rest_api_port=0 to turn REST off") from e
  return sock


def run(app: ASGIApp, manager: Optional[manager_lib.ModelManager],
        batcher: Optional[batching.Batcher], ports: Ports,
        rest_sockets: Optional[List[socket.socket]] = None,
        started: Optional[Started] = None) -> None:
  """serve() in a new event loop of this thread, uvloop's when installed (as uvicorn's "auto").

  uvloop.run and asyncio.run (not asyncio.Runner, which Python 3.9 and 3.10 lack) close the
  loop after it as a Runner does: pending tasks cancelled, async generators and executor shut.
  """
  coroutine = serve(app, manager, batcher, ports, rest_sockets, started)
  try:
    import uvloop  # pylint: disable=g-import-not-at-top
  except ImportError:
    return asyncio.run(coroutine)
  return uvloop.run(coroutine)


class BackgroundServer:
  """REST (and gRPC, given `manager`) in a daemon thread on free 127.0.0.1 ports (tests, tools).

  Attributes:
    url: the REST base URL.
    grpc_target: "127.0.0.1:PORT" of the gRPC API (None without `manager`).
  """

  def __init__(self, app: ASGIApp, manager: Optional[manager_lib.ModelManager] = None,
               batcher: Optional[batching.Batcher] = None, **port_options: Any) -> None:
    self._sock = socket.socket()
    self._sock.bind(("127.0.0.1", 0))
    self.port = self._sock.getsockname()[1]
    self.url = f"http://127.0.0.1:{self.port}"
    self.grpc_target: Optional[str] = None
    ports = Ports(grpc=0 if manager else None, rest=self.port, **port_options)
    self._ready = threading.Event()
    self._stop: Optional[Callable[..., None]] = None
    self._error: Optional[Exception] = None
    self._thread = threading.Thread(target=self._run, args=(app, manager, batcher, ports),
                                    daemon=True)

  def _run(self, app: ASGIApp, manager: Optional[manager_lib.ModelManager],
           batcher: Optional[batching.Batcher], ports: Ports) -> None:
    def started(grpc_port: Optional[int], stop: Callable[..., None]) -> None:
      if grpc_port:
        self.grpc_target = f"127.0.0.1:{grpc_port}"
      self._stop = stop
      self._ready.set()
    try:
      run(app, manager, batcher, ports, [self._sock], started)
    except Exception as e:  # pylint: disable=broad-except  # raised again by __enter__
      self._error = e
    self._ready.set()

  def __enter__(self) -> "BackgroundServer":
    self._thread.start()
    self._ready.wait(120)
    if self._stop is None:
      raise RuntimeError(f"the server thread died while starting: {self._error!r}")
    return self

  def __exit__(self, *exc: Any) -> None:
    assert self._stop is not None, "__enter__ saw the server start"
    self._stop()
    self._thread.join(15)
    self._sock.close()
