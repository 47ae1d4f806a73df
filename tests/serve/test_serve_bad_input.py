"""Bad requests each get a 4xx with a one-line error, and the server keeps serving."""

import socket
import time

import pytest
from serve_helpers import call

IMAGE = [[0.0] * 28] * 28
PREDICT = "/v1/models/mnist:predict"

BAD_REQUESTS = [
    # (method, path, body, status)
    ("POST", PREDICT, b"{not json", 400),
    ("POST", PREDICT, b"[1, 2]", 400),
    ("POST", PREDICT, b"\xff\xfe", 400),
    ("POST", PREDICT, {}, 400),
    ("POST", PREDICT, {"instances": [IMAGE], "inputs": [IMAGE]}, 400),
    ("POST", PREDICT, {"instances": []}, 400),
    ("POST", PREDICT, {"instances": "a string"}, 400),
    # A shape the graph cannot reshape (the session's error; [1, 784], [] run: test_serve_leniency)
    ("POST", PREDICT, {"instances": [[[0.0] * 27] * 28]}, 400),
    ("POST", PREDICT, {"instances": [IMAGE[:27] + [[0.0] * 29]]}, 400),  # ragged
    ("POST", PREDICT, {"instances": [[["a"] * 28] * 28]}, 400),          # wrong dtype
    ("POST", PREDICT, {"instances": [[[None] * 28] * 28]}, 400),
    ("POST", PREDICT, {"instances": [[[float("nan")] + [0.0] * 27] * 28]}, 400),  # NaN token
    ("POST", PREDICT, {"inputs": [[[float("inf")] * 28] * 28]}, 400),
    ("POST", PREDICT, {"inputs": {"imagez": [IMAGE]}}, 400),             # unknown input name
    ("POST", PREDICT, {"instances": [IMAGE], "signature_name": "nope"}, 400),
    ("POST", PREDICT, {"instances": [IMAGE], "signature_name": 3}, 400),
    ("POST", PREDICT, {"signature_name": "examples:predict", "instances": [{"b64": "%%%"}]}, 400),
    ("POST", PREDICT, {"signature_name": "examples:predict", "instances": ["not an example"]},
     400),
    ("POST", "/v1/models/mnist:classify", {"signature_name": "examples:classify",
                                           "examples": [{"x": [0.5]}]}, 400),  # 1 of 784 pixels
    ("POST", "/v1/models/mnist:classify", {"signature_name": "examples:classify",
                                           "examples": []}, 400),
    ("POST", "/v1/models/mnist:classify", {"signature_name": "examples:classify",
                                           "examples": [{"x": [float("nan")] * 784}]}, 400),
    ("POST", "/v1/models/mnist:classify", {"signature_name": "examples:classify",
                                           "examples": [{"x": [[1.0]]}]}, 400),
    ("POST", "/v1/models/mnist:regress", {"examples": [{"x": 1.0}]}, 400),
    ("POST", "/v1/models/nope:predict", {"instances": [IMAGE]}, 404),    # unknown model
    ("GET", "/v1/models/nope", None, 404),
    ("GET", "/v1/models/nope/metadata", None, 404),
    ("POST", "/v1/models/mnist/versions/7:predict", {"instances": [IMAGE]}, 404),
    ("GET", "/v1/models/mnist/versions/7", None, 404),
    ("GET", "/v1/models/mnist/labels/stable/metadata", None, 400),      # no labels
    ("POST", "/v1/models/mnist:explain", {"instances": [IMAGE]}, 400),   # malformed (TF Serving)
    ("GET", "/v1/models/mnist/versions/x", None, 400),
    ("GET", PREDICT, None, 400),
    ("POST", "/v1/models/mnist", {}, 400),
    ("GET", "/nothing/here", None, 404),
    ("GET", "/static/missing.js", None, 404),
]


@pytest.mark.parametrize("method,path,body,code", BAD_REQUESTS)
def test_bad_request_gets_a_one_line_error(served, method, path, body, code):
  got, reply = call(served[0], method, path, body)
  assert got == code, reply
  assert isinstance(reply, dict) and set(reply) == {"error"}, reply
  assert reply["error"] and "\n" not in reply["error"] and len(reply["error"]) < 400
  if "nan" in repr(body) or "inf" in repr(body):
    assert "NaN or Infinity" in reply["error"]


def _raw(url, request, body_chunks=()):
  """Sends raw bytes (no client-side path cleanup); returns the status line and the reply."""
  host, port = url.split("//", 1)[1].split(":")
  with socket.create_connection((host, int(port)), timeout=30) as sock:
    sock.sendall(request)
    try:
      for chunk in body_chunks:
        sock.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
      pass  # the server answered and closed without reading the body: what we want
    reply = b""
    try:
      while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
        data = sock.recv(65536)
        if not data:
          break
        reply += data
    except ConnectionResetError:
      pass
  return reply


@pytest.mark.parametrize("path", ["/../etc/passwd", "/static/../../etc/passwd",
                                  "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fapp.py",
                                  "/static//etc/passwd", "/static/../app.py"])
def test_no_file_outside_the_static_files(served, path):
  reply = _raw(served[0], f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
  status_line = reply.split(b"\r\n", 1)[0]
  assert status_line.split()[1] in (b"400", b"404"), reply[:200]
  assert b"root:" not in reply and b"import" not in reply
  assert reply.rstrip().endswith(b"}") and b'"error"' in reply


def _rss_mb():
  with open("/proc/self/status", encoding="ascii") as f:
    return int(next(line for line in f if line.startswith("VmRSS")).split()[1]) / 1024


def test_a_100_mb_body_is_refused_before_it_is_read(served):
  before = _rss_mb()
  start = time.monotonic()
  headers = (f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             f"Content-Length: {100 << 20}\r\n\r\n").encode()
  reply = _raw(served[0], headers, [b"[" * (1 << 20)] * 100)
  assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
  assert b'"error"' in reply and b"limit" in reply
  assert _rss_mb() - before < 50  # the server (in this process) did not buffer the body
  assert time.monotonic() - start < 30
  # Chunked, without a Content-Length: cut off while reading.
  chunk = b"[" * (1 << 20)
  chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40)) + b"0\r\n\r\n"
  reply = _raw(served[0], (f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                           "\r\n\r\n").encode(), [chunked])
  assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_still_serving_after_the_bad_requests(served):
  code, body = call(served[0], "POST", PREDICT, {"instances": [IMAGE] * 3})
  assert code == 200 and len(body["predictions"]) == 3
