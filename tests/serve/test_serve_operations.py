"""Operations: CORS as TF Serving's --rest_api_enable_cors_support."""

import http.client

import pytest

from mnist_estimator.serve import batching, server

IMAGE = [[0.5] * 28] * 28


def _raw(url, method, path, headers=None, body=None):
  connection = http.client.HTTPConnection(url.split("//", 1)[1], timeout=30)
  connection.request(method, path, body=body, headers=headers or {})
  response = connection.getresponse()
  answer = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
  connection.close()
  return answer


@pytest.mark.parametrize("cors", [False, True])
def test_cors(tiny_export, cors):
  """http_server.cc: OPTIONS with an http(s) Origin is 200, without one 400; the headers of
  AddCORSHeaders (http_rest_api_util.cc) on every /v1/ answer only with the flag."""
  app, manager, batcher = server.build(tiny_export, poll_seconds=0, cors=cors,
                                       batch_options=batching.BatchOptions())
  with server.BackgroundServer(app) as background:
    url = background.url
    code, headers, body = _raw(url, "OPTIONS", "/v1/models/mnist:predict",
                               {"Origin": "https://example.com",
                                "Access-Control-Request-Method": "POST"})
    assert (code, body) == (200, b"")
    assert ("access-control-allow-origin" in headers) == cors
    if cors:
      assert headers["access-control-allow-methods"] == "POST, GET"
      assert headers["access-control-allow-headers"] == "Content-Type"
    code, _, body = _raw(url, "OPTIONS", "/v1/models/mnist:predict")
    assert code == 400 and b"Origin header is missing in CORS preflight" in body
    code, headers, _ = _raw(url, "POST", "/v1/models/mnist:predict",
                            {"Content-Type": "application/json"},
                            ('{"instances": %s}' % [IMAGE]).encode())
    assert code == 200 and (headers.get("access-control-allow-origin") == "*") == cors
    code, headers, _ = _raw(url, "GET", "/v1/models/nope")
    assert code == 404 and (headers.get("access-control-allow-origin") == "*") == cors
  manager.stop()
  batcher.close()
