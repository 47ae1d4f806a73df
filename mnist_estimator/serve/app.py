"""The Starlette app: TF Serving's /v1/models REST API and the draw-a-digit page."""

import json
import os
import re

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse
from starlette.responses import Response
from starlette.routing import Mount
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from mnist_estimator.serve import rest
from mnist_estimator.serve import servable as servable_lib
from mnist_estimator.serve import status

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
DEFAULT_MAX_BODY_BYTES = 32 << 20  # a batch of ~4,000 images as JSON

# /v1/models/NAME[/versions/N|/labels/L][/metadata|:predict|:classify|:regress]
_MODEL_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>"
                         r"[^/:]+))?(?:(?P<metadata>/metadata)|:(?P<verb>[a-z]+))?$")
_VERBS = {"predict": None, "classify": servable_lib.CLASSIFY_METHOD,
          "regress": servable_lib.REGRESS_METHOD}


def json_response(content, code=200):
  return Response(json.dumps(content, separators=(",", ":")), code,
                  media_type="application/json")


def error_response(code, message):
  return json_response({"error": " ".join(str(message).split())}, code)


class Api:
  """The request handlers, around a ModelManager and a Batcher."""

  def __init__(self, manager, batcher, max_body_bytes=DEFAULT_MAX_BODY_BYTES):
    self.manager = manager
    self.batcher = batcher
    self.max_body_bytes = max_body_bytes

  async def models(self, request):
    """Every /v1/models/... request: parse the path, answer or raise ApiError."""
    try:
      return await self._models(request)
    except status.ApiError as e:
      return error_response(e.status, e.message)

  async def _models(self, request):
    path = request.path_params["path"]
    match = _MODEL_PATH.match(path)
    if not match or match["label"] or (match["verb"] and match["verb"] not in _VERBS):
      raise status.ApiError(status.NOT_FOUND if match else status.BAD_REQUEST,
                            f"Malformed request: {request.method} /v1/models/{path}")
    name, version, verb = match["name"], match["version"], match["verb"]
    if (request.method == "POST") != bool(verb):
      raise status.ApiError(status.METHOD_NOT_ALLOWED,
                            f"{request.method} is not allowed on /v1/models/{path}")
    if match["metadata"]:
      return json_response(self.manager.metadata(name, version))
    if not verb:
      return json_response(self.manager.status(name, version))
    body = await self._read_body(request)
    servable = self.manager.get(name, version)
    parsed = rest.parse_body(body)
    if verb == "predict":
      return json_response(await self._predict(servable, parsed))
    return json_response(await self._classify_or_regress(servable, parsed, verb))

  async def _read_body(self, request):
    """The body, refused with 413 before reading when it is larger than max_body_bytes."""
    length = request.headers.get("content-length")
    limit = self.max_body_bytes
    too_large = f"request body is larger than the server's limit of {limit} bytes"
    if length is not None:
      if not length.isdigit():
        raise status.bad_request(f"bad Content-Length: {length[:20]}")
      if int(length) > limit:
        raise status.ApiError(status.TOO_LARGE, f"{too_large} ({int(length)} bytes)")
    chunks, total = [], 0
    async for chunk in request.stream():
      total += len(chunk)
      if total > limit:
        raise status.ApiError(status.TOO_LARGE, too_large)
      chunks.append(chunk)
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

  async def page(self, request):
    del request  # unused
    with open(os.path.join(STATIC_DIR, "index.html"), encoding="utf-8") as f:
      html = f.read()
    return HTMLResponse(html.replace("{{MODEL_NAME}}", self.manager.name))


async def _http_error(request, error):
  del request  # unused
  return error_response(error.status_code, error.detail)


async def _server_error(request, error):
  del request  # unused
  return error_response(status.INTERNAL, f"internal error: {type(error).__name__}: {error}")


def make_app(manager, batcher, max_body_bytes=DEFAULT_MAX_BODY_BYTES):
  """The ASGI app serving `manager`'s model through `batcher`."""
  api = Api(manager, batcher, max_body_bytes)
  routes = [
      Route("/", api.page),
      Route("/v1/models/{path:path}", api.models, methods=["GET", "POST", "PUT", "DELETE"]),
      Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
  ]
  return Starlette(routes=routes, exception_handlers={HTTPException: _http_error,
                                                     Exception: _server_error})
