"""The Starlette app: TF Serving's /v1/models REST API and the draw-a-digit page."""

import re
import time
import urllib.parse
import zlib
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, Tuple

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from mnist_estimator.serve import health
from mnist_estimator.serve import inference
from mnist_estimator.serve import page
from mnist_estimator.serve import rest
from mnist_estimator.serve import status
from mnist_estimator.serve import tf_examples

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.serve.batching import Batcher
  from mnist_estimator.serve.manager import ModelManager
  from mnist_estimator.serve.metrics import Metrics
  from mnist_estimator.serve.servable import Servable

STATIC_DIR = page.STATIC_DIR
DEFAULT_MAX_BODY_BYTES = 32 << 20  # a batch of ~4,000 images as JSON

# TF Serving's paths (http_rest_api_util.cc): all of /v1/ goes to the API, case-insensitively;
# what these do not match is 400 "Malformed request".
_API_PREFIX = "/v1/"
_VERSION = r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
_POST_PATH = re.compile(rf"/v1/models/(?P<name>[^/:]+){_VERSION}:(?P<verb>classify|regress|"
                        r"predict)", re.IGNORECASE | re.ASCII)
_GET_PATH = re.compile(rf"/v1/models(?:/(?P<name>[^/:]+))?{_VERSION}(?:/(?P<sub>metadata))?",
                       re.IGNORECASE | re.ASCII)
_VERBS = ("predict", "classify", "regress")
_API_NAMES = {"predict": "predict", "classify": "classify", "regress": "regress",
              "metadata": "get_model_metadata", "status": "get_model_status"}
_CORS_HEADERS = [(b"access-control-allow-origin", b"*"),
                 (b"access-control-allow-methods", b"POST, GET"),
                 (b"access-control-allow-headers", b"Content-Type")]


def parse_path(method: str, path: str) -> Tuple[str, Optional[int], Optional[str], str]:
  """(name, version, label, verb or "metadata" or "status") of an API path, as TF Serving does.

  Raises:
    ApiError: INVALID_ARGUMENT "Malformed request" for a path or method it does not serve, or a
      version that is not an int64.
  """
  malformed = status.bad_request(f"Malformed request: {method} {path}"[:200])
  pattern = {"POST": _POST_PATH, "GET": _GET_PATH}.get(method)
  match = pattern.fullmatch(path) if pattern else None
  if not match:
    raise malformed
  name, version, label = (urllib.parse.unquote(match[k]) if match[k] else None
                          for k in ("name", "version", "label"))
  if version is not None and int(version) >= 1 << 63:
    raise status.bad_request(f"Failed to convert version: {version} to numeric.")
  number = None if version is None else int(version)
  if method == "POST":
    if match["verb"] not in _VERBS:  # matched case-insensitively, compared exactly (as there)
      raise malformed
    assert name, "_POST_PATH matches a name"
    return name, number, label, match["verb"]
  if not name:
    raise status.bad_request("Missing model name in request.")
  return name, number, label, "metadata" if match["sub"] == "metadata" else "status"


class Api:
  """The /v1/... handler, a plain ASGI app around a ModelManager and a Batcher.

  uvicorn (httptools) parses HTTP; this skips Starlette's middleware and Request objects on
  the hot path, which costs a third of a single-image request's CPU time.
  """

  def __init__(self, manager: "ModelManager", batcher: "Batcher",
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, cors: bool = False,
               metrics: Optional["Metrics"] = None) -> None:
    self.manager = manager
    self.batcher = batcher
    self.max_body_bytes = max_body_bytes
    self.metrics = metrics  # serve.metrics.Metrics, or None
    # TF Serving's AddCORSHeaders (http_rest_api_util.cc), with --rest_api_enable_cors_support.
    self._extra_headers = _CORS_HEADERS if cors else []

  async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
    start = time.perf_counter()
    where: Dict[str, str] = {}
    try:
      code, content = 200, await self._models(scope, receive, where)
    except status.ApiError as e:
      code, content = e.status, {"error": e.message}
      where["code"] = e.code
    except Exception as e:  # pylint: disable=broad-except  # a bug: answer 500 and go on
      error = status.internal(e)
      code, content = error.status, {"error": error.message}
      where["code"] = error.code
    body = b"" if content is None else rest.dumps(content)
    await send({"type": "http.response.start", "status": code, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
        *self._extra_headers]})
    await send({"type": "http.response.body", "body": body})
    if self.metrics is not None and "api" in where:
      self.metrics.request(where["model"], where["api"], "REST", where.get("code", "OK"),
                           time.perf_counter() - start)

  async def _models(self, scope: Scope, receive: Receive, where: Dict[str, str]) -> Any:
    """The answer's content (None: no body); `where` gets the model and API for the metrics."""
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    if scope["method"] == "OPTIONS":  # a CORS preflight, as TF Serving's http_server.cc
      origin = dict(scope["headers"]).get(b"origin", b"")
      if not re.search(rb"https?://", origin):
        raise status.ApiError(status.FAILED_PRECONDITION,
                              "Origin header is missing in CORS preflight")
      return None
    name, version, label, verb = parse_path(scope["method"], path)
    where.update(model=name, api=_API_NAMES[verb])
    if verb == "status":
      return self.manager.status(name, version)  # TF Serving's GetModelStatus ignores labels
    if verb == "metadata":
      return self.manager.metadata(name, version, label)
    body = await self._read_body(scope, receive)
    request = rest.parse_body(body)
    servable = self.manager.get(name, version, label)
    if verb == "predict":
      return await self._predict(servable, request)
    return await self._classify_or_regress(servable, request, verb)

  async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
    """The body (gunzipped), refused with 413 before reading when over max_body_bytes."""
    limit = self.max_body_bytes
    too_large = f"request body is larger than the server's limit of {limit} bytes"
    headers = dict(scope["headers"])
    length = headers.get(b"content-length")
    if length is not None:
      if not length.isdigit():
        raise status.bad_request(f"bad Content-Length: {length[:20].decode('latin-1')}")
      if int(length) > limit:
        raise status.ApiError(status.RESOURCE_EXHAUSTED, f"{too_large} ({int(length)} bytes)",
                              status.TOO_LARGE)
    chunks: List[bytes] = []
    total, more = 0, True
    while more:
      message = await receive()
      if message["type"] == "http.disconnect":
        raise status.bad_request("the client disconnected")
      chunks.append(message.get("body", b""))
      total += len(chunks[-1])
      if total > limit:
        raise status.ApiError(status.RESOURCE_EXHAUSTED, too_large, status.TOO_LARGE)
      more = message.get("more_body", False)
    body = b"".join(chunks)
    if b"gzip" in headers.get(b"content-encoding", b""):  # as TF Serving's evhttp_request.cc
      body = _gunzip(body, limit, too_large)
    return body

  async def _predict(self, servable: "Servable", request: Dict[str, Any]) -> Dict[str, Any]:
    signature = inference.predict_signature(servable, request.get("signature_name"),
                                            status.INVALID_ARGUMENT)
    feeds, size, row_format = rest.predict_feeds(request, signature)
    outputs = await self.batcher.run(servable, signature, feeds, size)
    return rest.predict_response(outputs, row_format)

  async def _classify_or_regress(self, servable: "Servable", request: Dict[str, Any],
                                 verb: str) -> Dict[str, Any]:
    method = inference.CLASSIFY if verb == "classify" else inference.REGRESS
    signature = inference.method_signature(servable, request.get("signature_name"), method)
    serialized = tf_examples.classify_examples(request)
    if verb == "classify":
      return rest.classify_response(*await inference.classify(
          self.batcher, servable, signature, serialized))
    return rest.regress_response(await inference.regress(self.batcher, servable, signature,
                                                         serialized))


def _gunzip(body: bytes, limit: int, too_large: str) -> bytes:
  """A gzip body unpacked, to at most `limit` bytes (a small bomb cannot fill the memory)."""
  unpacker = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
  try:
    data = unpacker.decompress(body, limit + 1)
  except zlib.error as e:
    raise status.bad_request(f"Failed to uncompress the gzipped body: {e}") from e
  if len(data) > limit:
    raise status.ApiError(status.RESOURCE_EXHAUSTED, f"{too_large} (unpacked)", status.TOO_LARGE)
  return data


async def _http_error(request: Request, error: HTTPException) -> Response:
  del request  # unused
  return page.json_response({"error": " ".join(str(error.detail).split())}, error.status_code)


async def _server_error(request: Request, error: Exception) -> Response:
  del request  # unused
  answer = status.internal(error)
  return page.json_response({"error": answer.message}, answer.status)


def ready_endpoint(manager: "ModelManager") -> Callable[[Request], Awaitable[Response]]:
  """GET /ready: 200 when every model configured has a version served, else 503 naming them."""

  async def ready(request: Request) -> Response:
    del request  # unused
    code, content = health.readiness(manager)
    return page.json_response(content, code)
  return ready


def make_app(manager: "ModelManager", batcher: "Batcher",
             max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, cors: bool = False,
             metrics: Optional["Metrics"] = None, metrics_path: Optional[str] = None) -> ASGIApp:
  """The ASGI app: /v1/... to the API, the rest (page, static files, 404s) to Starlette.

  Args:
    manager: the ModelManager.
    batcher: the Batcher.
    max_body_bytes: larger bodies get 413.
    cors: add TF Serving's CORS headers to the API's answers.
    metrics: a serve.metrics.Metrics counting the API's requests, or None.
    metrics_path: where Prometheus reads `metrics` (--monitoring_config_file's path), or None.
  """
  api = Api(manager, batcher, max_body_bytes, cors, metrics)
  routes = [Route("/", page.page_endpoint(manager)),
            Route("/page/model", page.page_model_endpoint(manager)),
            Route("/page/models", page.page_models_endpoint(manager)),
            Route("/model.onnx", page.onnx_endpoint(manager)),
            Route("/ready", ready_endpoint(manager)),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")]
  if metrics is not None and metrics_path:
    routes.insert(0, Route(metrics_path, metrics.endpoint()))
  # Typed loosely: Starlette's own hint for a handler differs between its versions in the lock
  # (0.49 on Python 3.9 takes only (Request, Exception) handlers).
  handlers: Dict[Any, Callable[..., Any]] = {HTTPException: _http_error,
                                             Exception: _server_error}
  site = Starlette(routes=routes, exception_handlers=handlers)

  async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"][:4].lower() == _API_PREFIX:
      await api(scope, receive, send)
    else:
      await site(scope, receive, send)
  return app
