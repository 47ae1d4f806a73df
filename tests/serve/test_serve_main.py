"""`python -m mnist_estimator.serve`: one-line usage errors, and a real server process."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def test_a_usage_error_is_one_line(tmp_path):
  # The other messages (no export, no SavedModel) are tested in-process in test_serve_versions.
  done = subprocess.run([sys.executable, "-m", "mnist_estimator.serve", f"--model_dir={tmp_path}"],
                        env=ENV, capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip().splitlines()[-1].startswith("error: no export in"), done.stderr
  assert "Traceback" not in done.stderr


def test_the_server_process_serves(tiny_export):
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
  process = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "-m", "mnist_estimator.serve", f"--saved_model={tiny_export}",
       f"--port={port}", "--model_name=digits"], env=ENV, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True)
  try:
    deadline = time.monotonic() + 120
    while True:
      try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/digits", timeout=5) as r:
          assert b'"AVAILABLE"' in r.read()
          break
      except OSError:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.3)
  finally:
    process.terminate()
    out = process.communicate(timeout=30)[0]
  assert f"serving digits (version 1) from {tiny_export} on http://127.0.0.1:{port}/" in out
