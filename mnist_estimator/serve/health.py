"""The standard gRPC health service (grpc.health.v1) and REST readiness, from live state."""

import asyncio
from typing import Any, Dict, List, Optional, Protocol, Tuple

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

# Services that are the whole server: serving when every configured model has a version.
WHOLE_SERVER = ("", "tensorflow.serving.PredictionService")
# Answers whenever the server runs (GetModelStatus works with no version served).
MODEL_SERVICE = "tensorflow.serving.ModelService"
POLL_SECONDS = 0.5


class Core(Protocol):
  """What health needs of the server (serve.manager.ModelManager has it)."""

  def names(self) -> List[str]:
    """The names of the models configured now."""

  def available(self, name: str) -> bool:
    """True if model `name` has a version served."""


def unavailable(core: Core) -> List[str]:
  """The configured models that have no version served, sorted."""
  return sorted(name for name in core.names() if not core.available(name))


def readiness(core: Core) -> Tuple[int, Dict[str, Any]]:
  """The REST readiness answer: 200 once every configured model has a version served, else 503.

  No model configured is ready (TF Serving starts so and takes models by a config reload).

  Args:
    core: the server's models.

  Returns:
    (HTTP status, a JSON-ready dict): {"ready": bool, "models": {name: bool}}, and with 503
    an "error" naming the models without a version.
  """
  models = {name: bool(core.available(name)) for name in core.names()}
  missing = sorted(name for name, ready in models.items() if not ready)
  if not missing:
    return 200, {"ready": True, "models": models}
  return 503, {"ready": False, "models": models,
               "error": f"no version served yet of model(s): {', '.join(missing)}"}


class HealthServicer(health_pb2_grpc.HealthServicer):
  """grpc.health.v1.Health for grpc.aio, answering from the models' live state.

  Services: "" and "tensorflow.serving.PredictionService" are SERVING when every configured
  model has a version served; "tensorflow.serving.ModelService" while the server runs; a
  configured model's name when it has a version; any other is unknown (Check: NOT_FOUND,
  Watch: SERVICE_UNKNOWN, then its status once it is configured, as the standard says).
  After `shutdown()` every known service is NOT_SERVING.

  Watch re-reads the state every `poll_seconds`, and at once after `changed()`: nothing has
  to be told of a change, and a listener (ModelManager.add_listener) makes it prompt.
  """

  def __init__(self, core: Core, poll_seconds: float = POLL_SECONDS) -> None:
    self._core = core
    self._poll_seconds = poll_seconds
    self._shutting_down = False
    # the server's event loop, known from the first Watch
    self._loop: Optional[asyncio.AbstractEventLoop] = None
    self._wake: Optional[asyncio.Event] = None  # set (then replaced) by changed()

  def status(self, service: str) -> Optional[int]:
    """The ServingStatus of `service` now, or None if it is unknown."""
    if service in WHOLE_SERVER:
      ok = not self._shutting_down and not unavailable(self._core)
    elif service == MODEL_SERVICE:
      ok = not self._shutting_down
    elif service in self._core.names():
      ok = not self._shutting_down and self._core.available(service)
    else:
      return None
    return SERVING if ok else NOT_SERVING

  async def Check(self, request: Any, context: Any) -> Any:  # pylint: disable=invalid-name
    status = self.status(request.service)
    if status is None:
      await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
    return health_pb2.HealthCheckResponse(status=status)

  async def Watch(self, request: Any, context: Any) -> None:  # pylint: disable=invalid-name
    """Sends the status now, then each change, until the client cancels."""
    loop = asyncio.get_running_loop()
    if loop is not self._loop:  # a server on a new loop: an old loop's Event cannot wake it
      self._loop, self._wake = loop, None
    last = None
    while True:
      wake = self._event()  # taken before reading: a change after the read still wakes us
      status = self.status(request.service)
      status = SERVICE_UNKNOWN if status is None else status
      if status != last:
        await context.write(health_pb2.HealthCheckResponse(status=status))
        last = status
      try:
        await asyncio.wait_for(wake.wait(), self._poll_seconds)
      except asyncio.TimeoutError:
        pass

  def changed(self) -> None:
    """Wakes every Watch to re-read the state now; callable from any thread."""
    loop = self._loop
    if loop is None or loop.is_closed():
      return  # no Watch yet: nothing to wake
    try:
      on_loop = asyncio.get_running_loop() is loop
    except RuntimeError:
      on_loop = False
    if on_loop:
      self._set_wake()
    else:
      loop.call_soon_threadsafe(self._set_wake)

  def shutdown(self) -> None:
    """Every service NOT_SERVING from now on (call before the server's graceful stop)."""
    self._shutting_down = True
    self.changed()

  def _event(self) -> asyncio.Event:
    if self._wake is None:
      self._wake = asyncio.Event()  # made on the loop (Python 3.9's Event binds to one)
    return self._wake

  def _set_wake(self) -> None:
    wake, self._wake = self._wake, None
    if wake is not None:
      wake.set()


def add_to_server(grpc_server: grpc.aio.Server, core: Core,
                  poll_seconds: float = POLL_SECONDS) -> HealthServicer:
  """Adds grpc.health.v1.Health to a grpc.aio server (before it starts).

  Args:
    grpc_server: the grpc.aio server.
    core: the server's models: names() and available(name).
    poll_seconds: how often a Watch re-reads the state when `changed()` is not called.

  Returns:
    The servicer: call its changed() when versions change and shutdown() before stopping.
  """
  servicer = HealthServicer(core, poll_seconds)
  health_pb2_grpc.add_HealthServicer_to_server(servicer, grpc_server)
  return servicer
