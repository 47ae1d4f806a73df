"""`python -m mnist_estimator.serve`: one-line usage errors, and a real server process."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import grpc
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from mnist_estimator.common.errors import UsageError
from mnist_estimator.serve import main as serve_main
from mnist_estimator.serve import server

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def test_a_usage_error_is_one_line(tmp_path):
  # The other messages (no export, no SavedModel) are tested in-process in test_serve_versions.
  done = subprocess.run([sys.executable, "-m", "mnist_estimator.serve", f"--model_dir={tmp_path}"],
                        env=ENV, capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip().splitlines()[-1].startswith("error: no export in"), done.stderr
  assert "Traceback" not in done.stderr


def _free_port():
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def test_port_flags_are_checked():
  with pytest.raises(UsageError, match="turn off both APIs"):
    serve_main._check_ports(server.Ports(grpc=None, rest=0))
  with pytest.raises(UsageError, match="different ports"):
    serve_main._check_ports(server.Ports(grpc=8500, rest=8500))
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    with pytest.raises(UsageError, match="--rest_api_port=0 to turn REST off"):
      server.listen("127.0.0.1", busy.getsockname()[1])


def test_the_server_process_serves_grpc_and_rest(tiny_export):
  """TF Serving's flag names: --port is gRPC, --rest_api_port REST; one line says which is which."""
  port, rest_port = _free_port(), _free_port()
  process = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "-m", "mnist_estimator.serve", f"--saved_model={tiny_export}",
       f"--port={port}", f"--rest_api_port={rest_port}", "--model_name=digits"], env=ENV,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    deadline = time.monotonic() + 120
    while True:
      try:
        with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/digits",
                                    timeout=5) as r:
          assert b'"AVAILABLE"' in r.read()
          break
      except OSError:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.3)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "digits"
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
      answer = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)
    assert answer.model_version_status[0].version == 1
  finally:
    process.terminate()
    out = process.communicate(timeout=30)[0]
  assert process.returncode == 0, out
  assert f"serving digits (version 1) from {tiny_export}\n" in out
  assert (f"listening: gRPC on 127.0.0.1:{port}, REST and the page on "
          f"http://127.0.0.1:{rest_port}/") in out


def test_a_busy_grpc_port_is_refused():
  """Without SO_REUSEPORT off, a second server bound the port too and took half the clients."""
  import asyncio  # pylint: disable=g-import-not-at-top

  async def second_server(port):
    await server._start_grpc(None, None, server.Ports(grpc=port, rest=0))

  first = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(1))
  port = first.add_insecure_port("127.0.0.1:0")
  first.start()
  try:
    with pytest.raises(UsageError, match=f"cannot listen for gRPC on 127.0.0.1:{port}"):
      asyncio.run(second_server(port))
  finally:
    first.stop(None)


def _get(url):
  try:
    with urllib.request.urlopen(url, timeout=5) as r:
      return r.status, r.read()
  except urllib.error.HTTPError as e:
    return e.code, e.read()


def _start(args, rest_port):
  """A server process of `args`, once its REST port answers (or a failed test)."""
  process = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "-m", "mnist_estimator.serve", "--port=0", f"--rest_api_port={rest_port}",
       *args], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  deadline = time.monotonic() + 120
  while True:
    try:
      _get(f"http://127.0.0.1:{rest_port}/ready")
      return process
    except OSError:
      if process.poll() is not None or time.monotonic() > deadline:
        process.kill()
        raise AssertionError(process.communicate()[0]) from None
      time.sleep(0.3)


def test_the_config_files_flags(tmp_path, tiny_export):
  """--model_config_file (re-read), --monitoring_config_file and CORS, end to end; model b's
  base path is empty at start (a sidecar copies it in later): NOT_FOUND until then."""
  shutil.copytree(os.path.join(tiny_export, "1"), tmp_path / "a" / "1")
  models = tmp_path / "models.config"
  entry = "config {{ name: '{0}' base_path: '{1}' }}"
  models.write_text(f"model_config_list {{ {entry.format('a', tmp_path / 'a')} "
                    f"{entry.format('b', tmp_path / 'b')} }}")
  (tmp_path / "monitoring.config").write_text("prometheus_config { enable: true }")
  rest_port = _free_port()
  url = f"http://127.0.0.1:{rest_port}"
  process = _start([f"--model_config_file={models}", "--model_config_file_poll_wait_seconds=0.2",
                    "--file_system_poll_wait_seconds=0.2",
                    f"--monitoring_config_file={tmp_path / 'monitoring.config'}",
                    "--rest_api_enable_cors_support"], rest_port)
  try:
    assert _get(f"{url}/v1/models/a")[0] == 200
    code, body = _get(f"{url}/v1/models/b")
    assert code == 404 and b"Could not find any versions of model b" in body
    assert _get(f"{url}/ready")[0] == 503
    shutil.copytree(os.path.join(tiny_export, "1"), tmp_path / "b" / "3")
    _wait_available(f"{url}/v1/models/b")
    assert _get(f"{url}/ready")[0] == 200
    models.write_text(models.read_text().replace(
        " }", f" }} {entry.format('c', tmp_path / 'a')}", 1))
    _wait_available(f"{url}/v1/models/c")
    code, body = _get(f"{url}/monitoring/prometheus/metrics")
    assert code == 200 and b'model_name="c"' in body
    with urllib.request.urlopen(f"{url}/v1/models/a", timeout=5) as r:
      assert r.headers["Access-Control-Allow-Origin"] == "*"
  finally:
    process.terminate()
    out = process.communicate(timeout=30)[0]
  assert process.returncode == 0, out
  assert f"serving a (version 1) from {tmp_path / 'a'}" in out
  assert (f"serving b: no version in {tmp_path / 'b'} yet; NOT_FOUND until one appears (the "
          "newest version is served)") in out


def _wait_available(url):
  deadline = time.monotonic() + 60
  while b'"AVAILABLE"' not in _get(url)[1]:  # 200 from LOADING on
    assert time.monotonic() < deadline
    time.sleep(0.2)
