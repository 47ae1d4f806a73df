"""serve.health: grpc.health.v1 on a real grpc.aio server, and REST readiness, from live state."""

import asyncio
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

from mnist_estimator.serve import health

SERVING, NOT_SERVING = health.SERVING, health.NOT_SERVING
PREDICTION = "tensorflow.serving.PredictionService"
READ_SECONDS = 5  # a Watch update comes well within this, or the test fails (never hangs)


class FakeCore:
  """The server's models: {name: a version served?}, changed by the test."""

  def __init__(self, **models):
    self.models = dict(models)

  def names(self):
    return sorted(self.models)

  def available(self, name):
    return self.models.get(name, False)


def test_readiness():
  assert health.readiness(FakeCore(mnist=True, other=True)) == (
      200, {"ready": True, "models": {"mnist": True, "other": True}})
  code, answer = health.readiness(FakeCore(mnist=True, other=False, third=False))
  assert code == 503 and answer["ready"] is False
  assert answer["models"] == {"mnist": True, "other": False, "third": False}
  assert answer["error"] == "no version served yet of model(s): other, third"
  assert health.readiness(FakeCore()) == (200, {"ready": True, "models": {}})


def test_status_of_each_service():
  core = FakeCore(mnist=True, other=False)
  servicer = health.HealthServicer(core)
  assert servicer.status("") == NOT_SERVING
  assert servicer.status(PREDICTION) == NOT_SERVING
  assert servicer.status("tensorflow.serving.ModelService") == SERVING
  assert servicer.status("mnist") == SERVING and servicer.status("other") == NOT_SERVING
  assert servicer.status("nope") is None
  core.models["other"] = True
  assert servicer.status("") == SERVING and servicer.status(PREDICTION) == SERVING
  servicer.shutdown()
  assert {servicer.status(s) for s in ["", PREDICTION, "mnist", "other",
                                       "tensorflow.serving.ModelService"]} == {NOT_SERVING}


def _with_server(core, test, poll_seconds=30.0):
  """Runs `test(stub, servicer)` against a grpc.aio server with the health service on a free
  port. The long default poll shows that changed() alone makes Watch prompt."""

  async def main():
    server = grpc.aio.server()
    servicer = health.add_to_server(server, core, poll_seconds=poll_seconds)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
      async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await test(health_pb2_grpc.HealthStub(channel), servicer)
    finally:
      await server.stop(None)
  asyncio.run(main())


async def _check(stub, service):
  answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
  return answer.status


async def _next(call):
  return (await asyncio.wait_for(call.read(), READ_SECONDS)).status


def test_check_answers_from_live_state():
  core = FakeCore(mnist=True, other=False)

  async def test(stub, servicer):
    assert await _check(stub, "") == NOT_SERVING
    assert await _check(stub, PREDICTION) == NOT_SERVING
    assert await _check(stub, "mnist") == SERVING
    assert await _check(stub, "other") == NOT_SERVING
    core.models["other"] = True  # no changed(): Check reads the state itself
    assert await _check(stub, "") == SERVING and await _check(stub, PREDICTION) == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as error:
      await _check(stub, "nope")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
  _with_server(core, test)


def test_watch_sends_each_change_after_changed():
  core = FakeCore(mnist=False)

  async def test(stub, servicer):
    whole = stub.Watch(health_pb2.HealthCheckRequest(service=""))
    model = stub.Watch(health_pb2.HealthCheckRequest(service="mnist"))
    also = stub.Watch(health_pb2.HealthCheckRequest(service="mnist"))  # two watchers of one
    assert [await _next(c) for c in (whole, model, also)] == [NOT_SERVING] * 3
    core.models["mnist"] = True
    # From another thread, as ModelManager's listeners are called from its poll thread.
    threading.Thread(target=servicer.changed).start()
    assert [await _next(c) for c in (whole, model, also)] == [SERVING] * 3
    core.models["mnist"] = False
    servicer.changed()
    assert [await _next(c) for c in (whole, model, also)] == [NOT_SERVING] * 3
    for call in (whole, model, also):
      call.cancel()
  _with_server(core, test)


def test_watch_polls_without_changed():
  core = FakeCore(mnist=False)

  async def test(stub, servicer):
    call = stub.Watch(health_pb2.HealthCheckRequest(service=PREDICTION))
    assert await _next(call) == NOT_SERVING
    core.models["mnist"] = True
    assert await _next(call) == SERVING
    call.cancel()
  _with_server(core, test, poll_seconds=0.05)


def test_watch_of_an_unknown_service_then_configured():
  """The standard: Watch of an unknown service sends SERVICE_UNKNOWN and stays open."""
  core = FakeCore(mnist=True)

  async def test(stub, servicer):
    call = stub.Watch(health_pb2.HealthCheckRequest(service="later"))
    assert await _next(call) == health.SERVICE_UNKNOWN
    core.models["later"] = False  # configured (a config reload), no version yet
    servicer.changed()
    assert await _next(call) == NOT_SERVING
    core.models["later"] = True
    servicer.changed()
    assert await _next(call) == SERVING
    call.cancel()
  _with_server(core, test)


def test_shutdown_turns_everything_not_serving():
  core = FakeCore(mnist=True)

  async def test(stub, servicer):
    call = stub.Watch(health_pb2.HealthCheckRequest(service=""))
    assert await _next(call) == SERVING
    servicer.shutdown()
    assert await _next(call) == NOT_SERVING
    assert await _check(stub, "mnist") == NOT_SERVING
    assert await _check(stub, "tensorflow.serving.ModelService") == NOT_SERVING
    call.cancel()
  _with_server(core, test)
