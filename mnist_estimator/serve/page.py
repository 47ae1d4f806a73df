"""The draw-a-digit page's endpoints: the page, its models, their input shapes, ONNX files."""

import os
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, cast

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.responses import HTMLResponse
from starlette.responses import Response

from mnist_estimator.serve import inference
from mnist_estimator.serve import servable as servable_lib
from mnist_estimator.serve import rest
from mnist_estimator.serve import status

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.serve.manager import ModelManager

Endpoint = Callable[[Request], Awaitable[Response]]
STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
NO_MODEL_PAGE = ("<!doctype html><title>No model served</title><p>No model is served yet: the "
                 "server's model config lists none. Add one to --model_config_file; the server "
                 "reads it again every --model_config_file_poll_wait_seconds, or at a "
                 "HandleReloadConfigRequest.</p>")


def json_response(content: Any, code: int = 200) -> Response:
  return Response(rest.dumps(content), code, media_type="application/json")


def page_endpoint(manager: "ModelManager") -> Endpoint:
  """The draw-a-digit page, with the server's default model filled in.

  The default is read at each request: a server started from a config of no models gets its
  first model when the config is reloaded. Until then the page says so (503).
  """

  async def page(request: Request) -> Response:
    del request  # unused
    name = manager.name  # once: a reload in another thread may set it meanwhile
    if name is None:
      return HTMLResponse(NO_MODEL_PAGE, status_code=503)
    with open(os.path.join(STATIC_DIR, "index.html"), encoding="utf-8") as f:
      html = f.read()
    return HTMLResponse(html.replace("{{MODEL_NAME}}", name))
  return page


def page_info(servable: servable_lib.Servable) -> Dict[str, Any]:
  """What the page needs of a servable (SavedModel or model file): serving_default's image
  shape [H, W, C] and the class names.

  Raises:
    ApiError: 400 when serving_default takes no images of a fixed size (a series model).
  """
  signature = inference.predict_signature(servable, "", status.INVALID_ARGUMENT)
  shape = next(iter(signature.inputs.values())).shape if len(signature.inputs) == 1 else None
  if not shape or len(shape) not in (3, 4) or None in shape[1:]:
    raise status.bad_request(f"the page needs a model of images; {signature.name} takes "
                             f"{shape}: use the REST API")
  height, width = shape[1:3]
  channels = shape[3] if len(shape) == 4 else 1
  # (an export's probabilities are [N, n_classes])
  n_classes = next((cast(int, s.shape[-1]) for k, s in signature.outputs.items()
                    if k == "probabilities" and s.shape), 10)
  return {"version": str(servable.version), "input_shape": [height, width, channels],
          "class_names": servable.class_names or [str(k) for k in range(n_classes)]}


def page_model_endpoint(manager: "ModelManager") -> Endpoint:
  """/page/model?name=NAME: the served version's image shape and class names, for the page."""

  async def page_model(request: Request) -> Response:
    try:
      servable = manager.get(request.query_params.get("name", manager.name))
      return json_response(page_info(servable))
    except status.ApiError as e:
      return json_response({"error": e.message}, e.status)
  return page_model


def page_models_endpoint(manager: "ModelManager") -> Endpoint:
  """GET /page/models: the models the page can pick (those with a version served now)."""

  async def page_models(request: Request) -> Response:
    del request  # unused
    models: List[Dict[str, str]] = []
    for name in manager.names():
      try:
        models.append({"name": name, "version": str(manager.get(name).version)})
      except status.ApiError:  # nothing served yet (or any more): not offered
        continue
    return json_response({"models": models, "default": manager.name})
  return page_models


def onnx_endpoint(manager: "ModelManager") -> Endpoint:
  """GET /model.onnx?name=NAME: the served version of model NAME (the default model without
  one) as ONNX, for the page's "in this browser" mode."""

  async def model_onnx(request: Request) -> Response:
    try:
      name = request.query_params.get("name") or manager.name
      servable = manager.get(name)
      path = servable_lib.onnx_file(servable)
      if path is None:
        raise status.not_found(f"version {servable.version} of {name} has no ONNX file beside it; "
                               "export one with --export_format=saved_model,onnx")
    except status.ApiError as e:
      return json_response({"error": e.message}, e.status)
    return FileResponse(path, media_type="application/octet-stream",
                        headers={"X-Model-Version": str(servable.version)})
  return model_onnx
