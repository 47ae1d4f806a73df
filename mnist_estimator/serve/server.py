"""Building the server (manager, batcher, app) and running it with uvicorn, also in a thread."""

import os
import socket
import threading

import uvicorn

from mnist_estimator.common import saved_model as saved_model_lib
from mnist_estimator.common.errors import UsageError
from mnist_estimator.serve import app as app_lib
from mnist_estimator.serve import batching
from mnist_estimator.serve import manager as manager_lib
from mnist_estimator.serve import portable_servable


def base_path(model_dir=None, saved_model=None, model_file=None):
  """The TF Serving base path to serve: --saved_model, else model_dir's best (or newest) export.

  Or --model_file, a .tflite or .onnx file.

  Raises:
    UsageError: neither is given, or model_dir has no export.
  """
  if model_file:
    if model_dir or saved_model:
      raise UsageError("pass --model_file alone, without --model_dir or --saved_model")
    if not portable_servable.is_model_file(model_file) or not os.path.isfile(model_file):
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


def build(base, model_name="mnist", poll_seconds=1.0, batch_options=None, threads=2,
          max_body_bytes=app_lib.DEFAULT_MAX_BODY_BYTES, session_config=None):
  """(app, manager, batcher) serving the newest version under `base`; polling has started.

  A .tflite or .onnx `base` is served as its one version, by TFLite or onnxruntime.
  """
  if portable_servable.is_model_file(base):
    runtime_threads = session_config.intra_op_parallelism_threads if session_config else None
    manager = portable_servable.FileManager(model_name, base, runtime_threads or None)
  else:
    manager = manager_lib.ModelManager(model_name, base, poll_seconds, session_config)
  manager.start()
  batcher = batching.Batcher(batch_options, threads)
  return app_lib.make_app(manager, batcher, max_body_bytes), manager, batcher


def uvicorn_config(app, host="127.0.0.1", port=8501, **kwargs):
  """uvicorn with httptools and uvloop ("auto" picks them when installed), no access log."""
  return uvicorn.Config(app, host=host, port=port, loop="auto", http="auto",
                        access_log=False, log_level="warning", backlog=2048,
                        timeout_keep_alive=30, proxy_headers=False, **kwargs)


class BackgroundServer:
  """An app served by uvicorn in a daemon thread on a free 127.0.0.1 port (tests, tools)."""

  def __init__(self, app):
    self._sock = socket.socket()
    self._sock.bind(("127.0.0.1", 0))
    self.port = self._sock.getsockname()[1]
    self.url = f"http://127.0.0.1:{self.port}"
    self._server = uvicorn.Server(uvicorn_config(app, port=self.port))
    self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                    daemon=True)

  def __enter__(self):
    self._thread.start()
    while not self._server.started:
      if not self._thread.is_alive():
        raise RuntimeError("the server thread died while starting")
      self._thread.join(0.02)
    return self

  def __exit__(self, *exc):
    self._server.should_exit = True
    self._thread.join(10)
    self._sock.close()
