"""The Starlette app: TF Serving's /v1/models REST API and the draw-a-digit page."""

import os
import re

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse
from starlette.responses import HTMLResponse
from starlette.responses import Response
from starlette.routing import Mount
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from mnist_estimator.serve import portable_servable
from mnist_estimator.serve import rest
from mnist_estimator.serve import servable as servable_lib
from mnist_estimator.serve import status

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
DEFAULT_MAX_BODY_BYTES = 32 << 20  # a batch of ~4,000 images as JSON
MODELS_PREFIX = "/v1/models/"

# /v1/models/NAME[/versions/N|/labels/L][/metadata|:predict|:classify|:regress]
_MODEL_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>"
                         r"[^/:]+))?(?:(?P<metadata>/metadata)|:(?P<verb>[a-z]+))?$")
_VERBS = {"predict": None, "classify": servable_lib.CLASSIFY_METHOD,
          "regress": servable_lib.REGRESS_METHOD}


def json_response(content, code=200):
  return Response(rest.dumps(content), code, media_type="application/json")


class Api:
  """The /v1/models/... handler, a plain ASGI app around a ModelManager and a Batcher.

  uvicorn (httptools) parses HTTP; this skips Starlette's middleware and Request objects on
  the hot path, which costs a third of a single-image request's CPU time.
  """

  def __init__(self, manager, batcher, max_body_bytes=DEFAULT_MAX_BODY_BYTES):
    self.manager = manager
    self.batcher = batcher
    self.max_body_bytes = max_body_bytes

  async def __call__(self, scope, receive, send):
    try:
      code, content = 200, await self._models(scope, receive)
    except status.ApiError as e:
      code, content = e.status, {"error": e.message}
    except Exception as e:  # pylint: disable=broad-except  # a bug: answer 500 and go on
      code, content = status.INTERNAL, {"error": f"internal error: {type(e).__name__}: {e}"}
    body = rest.dumps(content)
    await send({"type": "http.response.start", "status": code, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})

  async def _models(self, scope, receive):
    method, path = scope["method"], scope["path"][len(MODELS_PREFIX):]
    match = _MODEL_PATH.match(path)
    if not match or match["label"] or (match["verb"] and match["verb"] not in _VERBS):
      raise status.ApiError(status.NOT_FOUND if match else status.BAD_REQUEST,
                            f"Malformed request: {method} {MODELS_PREFIX}{path}"[:200])
    name, version, verb = match["name"], match["version"], match["verb"]
    if (method == "POST") != bool(verb):
      raise status.ApiError(status.METHOD_NOT_ALLOWED,
                            f"{method} is not allowed on {MODELS_PREFIX}{path}"[:200])
    if match["metadata"]:
      return self.manager.metadata(name, version)
    if not verb:
      return self.manager.status(name, version)
    body = await self._read_body(scope, receive)
    servable = self.manager.get(name, version)
    request = rest.parse_body(body)
    if verb == "predict":
      return await self._predict(servable, request)
    return await self._classify_or_regress(servable, request, verb)

  async def _read_body(self, scope, receive):
    """The body, refused with 413 before reading when it is larger than max_body_bytes."""
    limit = self.max_body_bytes
    too_large = f"request body is larger than the server's limit of {limit} bytes"
    length = dict(scope["headers"]).get(b"content-length")
    if length is not None:
      if not length.isdigit():
        raise status.bad_request(f"bad Content-Length: {length[:20].decode('latin-1')}")
      if int(length) > limit:
        raise status.ApiError(status.TOO_LARGE, f"{too_large} ({int(length)} bytes)")
    chunks, total, more = [], 0, True
    while more:
      message = await receive()
      if message["type"] == "http.disconnect":
        raise status.bad_request("the client disconnected")
      chunks.append(message.get("body", b""))
      total += len(chunks[-1])
      if total > limit:
        raise status.ApiError(status.TOO_LARGE, too_large)
      more = message.get("more_body", False)
    return b"".join(chunks)

  async def _predict(self, servable, request):
    signature = servable.signature(request.get("signature_name"))
    feeds, size, row_format = rest.predict_feeds(request, signature)
    outputs = await self.batcher.run(servable, signature, feeds, size)
    return rest.predict_response(outputs, row_format)

  async def _classify_or_regress(self, servable, request, verb):
    signature = servable.signature(request.get("signature_name"), _VERBS[verb])
    if len(signature.inputs) != 1:
      raise status.bad_request(f"signature {signature.name} must take one input of examples")
    serialized = rest.classify_examples(request)
    feeds = {next(iter(signature.inputs)): serialized}
    outputs = await self.batcher.run(servable, signature, feeds, len(serialized))
    if verb == "classify":
      return rest.classify_response(outputs, len(serialized))
    return rest.regress_response(outputs, len(serialized))

def page_endpoint(model_name):
  """The draw-a-digit page, with the served model's name filled in."""

  async def page(request):
    del request  # unused
    with open(os.path.join(STATIC_DIR, "index.html"), encoding="utf-8") as f:
      html = f.read()
    return HTMLResponse(html.replace("{{MODEL_NAME}}", model_name))
  return page


def onnx_endpoint(manager):
  """GET /model.onnx: the served version as ONNX, for the page's "in this browser" mode."""

  async def model_onnx(request):
    del request  # unused
    try:
      servable = manager.get(manager.name)
      path = portable_servable.onnx_file(servable)
      if path is None:
        raise status.not_found(f"version {servable.version} has no ONNX file beside it; "
                               "export one with --export_format=saved_model,onnx")
    except status.ApiError as e:
      return json_response({"error": e.message}, e.status)
    return FileResponse(path, media_type="application/octet-stream",
                        headers={"X-Model-Version": str(servable.version)})
  return model_onnx


async def _http_error(request, error):
  del request  # unused
  return json_response({"error": " ".join(str(error.detail).split())}, error.status_code)


async def _server_error(request, error):
  del request  # unused
  return json_response({"error": f"internal error: {type(error).__name__}: {error}"},
                       status.INTERNAL)


def make_app(manager, batcher, max_body_bytes=DEFAULT_MAX_BODY_BYTES):
  """The ASGI app: /v1/models/... to the API, the rest (page, static files, 404s) to Starlette."""
  api = Api(manager, batcher, max_body_bytes)
  site = Starlette(routes=[Route("/", page_endpoint(manager.name)),
                           Route("/model.onnx", onnx_endpoint(manager)),
                           Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")],
                   exception_handlers={HTTPException: _http_error, Exception: _server_error})

  async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"].startswith(MODELS_PREFIX):
      await api(scope, receive, send)
    else:
      await site(scope, receive, send)
  return app
