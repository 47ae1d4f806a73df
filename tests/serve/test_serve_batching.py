"""The batcher: concurrent requests merge into batches; limits and errors stay per request."""

import asyncio
import concurrent.futures
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serve_helpers import call, images
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from mnist_estimator.serve import batching, inference, server, status


class FakeSignature:
  """Doubles its input; records batch sizes; fails on rows holding -1."""

  name = "serving_default"

  def __init__(self, delay=0.0):
    self.sizes = []
    self.delay = delay
    self._lock = threading.Lock()

  def run(self, feeds):
    x = feeds["x"]
    with self._lock:
      self.sizes.append(len(x))
    threading.Event().wait(self.delay)
    if (x == -1).any():
      raise ValueError("row -1 is bad")
    return {"y": x * 2}


def _run_all(batcher, signature, arrays):
  async def go():
    results = await asyncio.gather(*[batcher.run("servable", signature, {"x": a}, len(a))
                                     for a in arrays], return_exceptions=True)
    batcher.close()
    return results
  return asyncio.run(go())


def test_concurrent_requests_are_batched():
  signature = FakeSignature(delay=0.01)
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=8, batch_timeout_micros=5000,
                                                   num_batch_threads=1))
  arrays = [np.full([1 + i % 2], i, np.float32) for i in range(40)]
  results = _run_all(batcher, signature, arrays)
  for array, result in zip(arrays, results):
    np.testing.assert_array_equal(result["y"], array * 2)
  assert sum(signature.sizes) == sum(len(a) for a in arrays)
  assert max(signature.sizes) <= 8 and len(signature.sizes) < 40 / 2


def test_batching_off_runs_each_request_alone():
  signature = FakeSignature()
  results = _run_all(batching.Batcher(None), signature, [np.ones([2])] * 5)
  assert signature.sizes == [2] * 5 and all(r["y"].tolist() == [2, 2] for r in results)


def test_a_bad_request_fails_alone():
  signature = FakeSignature(delay=0.01)
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=8, batch_timeout_micros=20000,
                                                   num_batch_threads=1))
  arrays = [np.full([1], -1 if i == 3 else i, np.float32) for i in range(6)]
  results = _run_all(batcher, signature, arrays)
  assert isinstance(results[3], status.ApiError) and results[3].status == 400
  assert "row -1 is bad" in results[3].message
  assert [r["y"][0] for i, r in enumerate(results) if i != 3] == [0, 2, 4, 8, 10]


class Observer:
  """Records the rows of every batch run, as the metrics' observer would."""

  def __init__(self):
    self.rows = []

  def batch(self, servable, rows):
    assert servable is not None
    self.rows.append(rows)


def test_a_large_request_is_split_and_joined_in_order():
  signature, observer = FakeSignature(delay=0.01), Observer()
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=4, num_batch_threads=2),
                             observer=observer)
  x = np.arange(10, dtype=np.float32)
  results = _run_all(batcher, signature, [x, np.full([1], 50.0)])
  np.testing.assert_array_equal(results[0]["y"], x * 2)
  assert results[1]["y"].tolist() == [100.0]
  assert max(signature.sizes) <= 4 and sum(signature.sizes) == 11
  assert max(observer.rows) <= 4 and sum(observer.rows) == 11
  assert batcher.queued_rows == 0


def test_a_queue_too_full_for_all_pieces_refuses_the_whole_request():
  """shared_batch_scheduler.h: with splitting, a task larger than the capacity is UNAVAILABLE."""
  signature = FakeSignature(delay=0.1)
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=4, max_enqueued_batches=2,
                                                   num_batch_threads=1))

  async def go():
    busy = asyncio.ensure_future(batcher.run("s", signature, {"x": np.ones([1])}, 1))
    await asyncio.sleep(0.02)  # the worker runs it; the queue (8 rows) is empty
    waiting = asyncio.ensure_future(batcher.run("s", signature, {"x": np.ones([3])}, 3))
    await asyncio.sleep(0)
    queued = batcher.queued_rows
    large = await asyncio.gather(batcher.run("s", signature, {"x": np.full([6], 5.0)}, 6),
                                 return_exceptions=True)
    results = await asyncio.gather(busy, waiting)
    batcher.close()
    return queued, large[0], results
  queued, large, results = asyncio.run(go())
  assert queued == 3
  assert isinstance(large, status.ApiError) and large.status == 503
  assert large.code == status.UNAVAILABLE
  assert large.message == (
      "The batch scheduling queue to which this task was submitted is full; task size is 6 but "
      "scheduling capacity is only 5 (num_enqueued_batches=1, max_enqueued_batches=2, "
      "open_batch_size=3, max_execution_batch_size=4)")
  assert signature.sizes == [1, 3]  # none of the refused request ran
  assert [r["y"].tolist() for r in results] == [[2.0], [2.0] * 3]


def test_without_splitting_a_large_request_gets_tf_servings_refusal():
  """shared_batch_scheduler.h's ValidateBatchTaskQueueCapacity: INVALID_ARGUMENT (400)."""
  signature = FakeSignature()
  options = batching.BatchOptions(max_batch_size=4, enable_large_batch_splitting=False)
  results = _run_all(batching.Batcher(options), signature, [np.ones([5]), np.ones([4])])
  assert isinstance(results[0], status.ApiError)
  assert results[0].code == status.INVALID_ARGUMENT and results[0].status == 400
  assert results[0].message == "Task size 5 is larger than maximum input batch size 4"
  assert results[1]["y"].tolist() == [2.0] * 4 and signature.sizes == [4]


def test_a_failing_piece_fails_its_request():
  signature = FakeSignature()
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=2, num_batch_threads=1))
  bad = np.array([1, 2, 3, -1, 5], np.float32)
  results = _run_all(batcher, signature, [bad])
  assert isinstance(results[0], status.ApiError) and "row -1 is bad" in results[0].message
  assert signature.sizes[:2] == [2, 2] and 5 not in signature.sizes


def test_a_request_that_must_run_alone_runs_whole_as_one_batch():
  """inference.ALONE (inputs not shaped as declared): not cut, one batch, one batch's room."""
  signature, observer = FakeSignature(delay=0.01), Observer()
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=2, max_enqueued_batches=1,
                                                   enable_large_batch_splitting=False,
                                                   num_batch_threads=1), observer=observer)

  async def go():
    alone = batcher.run("s", signature, {"x": np.ones([5])}, inference.ALONE)
    small = batcher.run("s", signature, {"x": np.ones([1])}, 1)
    return await asyncio.gather(alone, small, return_exceptions=True)
  alone, small = asyncio.run(go())
  batcher.close()
  assert alone["y"].tolist() == [2.0] * 5 and signature.sizes[0] == 5
  assert observer.rows[0] == 5
  assert isinstance(small, status.ApiError) and small.code == status.UNAVAILABLE  # no room


def test_batching_off_runs_a_large_request_in_chunks():
  signature = FakeSignature()
  x = np.arange(600, dtype=np.float32)
  results = _run_all(batching.Batcher(None), signature, [x])
  np.testing.assert_array_equal(results[0]["y"], x * 2)
  assert signature.sizes == [256, 256, 88]


def test_a_failing_observer_does_not_stop_the_batching():
  class Broken:
    def batch(self, servable, rows):
      raise RuntimeError("metrics down")
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=4), observer=Broken())
  results = _run_all(batcher, FakeSignature(), [np.ones([6])])
  assert results[0]["y"].tolist() == [2.0] * 6


def test_signatures_are_not_mixed_in_a_batch():
  first, second = FakeSignature(delay=0.01), FakeSignature(delay=0.01)
  second.name = "other"
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=8, batch_timeout_micros=5000,
                                                   num_batch_threads=1))

  async def go():
    calls = [batcher.run("s", first if i % 2 else second, {"x": np.full([1], i)}, 1)
             for i in range(10)]
    results = await asyncio.gather(*calls)
    batcher.close()
    return results
  results = asyncio.run(go())
  assert [r["y"][0] for r in results] == [2 * i for i in range(10)]
  assert sum(first.sizes) == 5 and sum(second.sizes) == 5


def test_a_request_whose_client_went_away_is_not_run():
  """A gRPC deadline (or a dropped client) cancels the waiting call: its rows are not run."""
  signature = FakeSignature(delay=0.1)
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=4, num_batch_threads=1))

  async def go():
    busy = asyncio.ensure_future(batcher.run("s", signature, {"x": np.full([1], 1.0)}, 1))
    await asyncio.sleep(0.02)  # the first runs; the next two wait in the queue
    gone = asyncio.ensure_future(batcher.run("s", signature, {"x": np.full([1], 7.0)}, 1))
    kept = asyncio.ensure_future(batcher.run("s", signature, {"x": np.full([1], 2.0)}, 1))
    await asyncio.sleep(0.01)
    gone.cancel()
    results = await asyncio.gather(busy, kept)
    batcher.close()
    return results
  results = asyncio.run(go())
  assert [r["y"][0] for r in results] == [2.0, 4.0]
  assert signature.sizes == [1, 1]  # the cancelled one never reached the model


# A real server (REST and TF Serving's gRPC API) with a 2-row batch and a 2-row queue.

QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


@pytest.fixture(scope="module")
def tight(tiny_export):
  """(REST url, gRPC stub, observer, batcher, the servable's signature) of a 2x1 batcher."""
  observer = Observer()
  app, manager, batcher = server.build(tiny_export, poll_seconds=0, batch_options=(
      batching.BatchOptions(max_batch_size=2, max_enqueued_batches=1, num_batch_threads=1)))
  batcher.observer = observer
  with server.BackgroundServer(app, manager, batcher) as background:
    channel = grpc.insecure_channel(background.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    yield (background.url, stub, observer, batcher,
           manager.get("mnist").signatures["serving_default"])
    channel.close()
  manager.stop()
  batcher.close()


def _request(x):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "mnist"
  request.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
  return request


def _rest(url, x):
  return call(url, "POST", "/v1/models/mnist:predict", {"instances": x.tolist()})


def test_a_request_larger_than_max_batch_size_is_split(tight, small, monkeypatch):
  url, stub, observer, batcher, signature = tight
  monkeypatch.setattr(batcher.options, "max_enqueued_batches", 4)  # room for all 7 rows
  x = images(small, 7)
  unbatched = signature.run({"images": x})  # one session run of all 7 rows
  observer.rows.clear()
  answer = stub.Predict(_request(x), timeout=60)
  probabilities = tf.make_ndarray(answer.outputs["probabilities"])
  assert tf.make_ndarray(answer.outputs["classes"]).tolist() == unbatched["classes"].tolist()
  np.testing.assert_allclose(probabilities, unbatched["probabilities"], rtol=1e-6, atol=1e-7)
  assert observer.rows == [2, 2, 2, 1]  # the pieces, in order, none above max_batch_size
  code, body = _rest(url, x)
  assert code == 200, body
  assert [p["classes"] for p in body["predictions"]] == unbatched["classes"].tolist()
  np.testing.assert_allclose([p["probabilities"] for p in body["predictions"]],
                             unbatched["probabilities"], rtol=1e-5, atol=1e-6)
  assert max(observer.rows) <= 2 and sum(observer.rows) == 14


def _slowly(monkeypatch, signature, seconds=0.05):
  """Each batch run takes `seconds` longer, so concurrent requests find the queue full."""
  run = signature.run

  def slow(feeds):
    time.sleep(seconds)
    return run(feeds)
  monkeypatch.setattr(signature, "run", slow)


def _at_once(n, send):
  """`send(i)` from n threads released together; each answer, or the test fails on a hang."""
  barrier = threading.Barrier(n)

  def one(i):
    barrier.wait(30)
    return send(i)
  with concurrent.futures.ThreadPoolExecutor(n) as pool:
    futures = [pool.submit(one, i) for i in range(n)]
    return [f.result(timeout=120) for f in futures]


def test_queue_limits_hold_for_grpc_requests_of_max_batch_size(tight, small, monkeypatch):
  _, stub, _, batcher, signature = tight
  x = images(small, 48)
  reference = signature.run({"images": x})["classes"]
  _slowly(monkeypatch, signature)

  def send(i):
    try:
      answer = stub.Predict(_request(x[2 * i:2 * i + 2]), timeout=60)
      return "OK", tf.make_ndarray(answer.outputs["classes"]).tolist()
    except grpc.RpcError as e:
      return e.code().name, e.details()
  answers = _at_once(24, send)
  refused = [a for a in answers if a[0] != "OK"]
  assert refused and all(a == ("UNAVAILABLE", a[1]) and a[1].startswith(QUEUE_FULL)
                         for a in refused), refused
  for i, (code, classes) in enumerate(answers):
    if code == "OK":
      assert classes == reference[2 * i:2 * i + 2].tolist()
  assert len(refused) < 24 and batcher.queued_rows == 0


def test_queue_limits_hold_for_rest_requests_larger_than_max_batch_size(tight, small,
                                                                         monkeypatch):
  url, _, _, batcher, signature = tight
  monkeypatch.setattr(batcher.options, "max_enqueued_batches", 2)  # one 3-row request waits
  x = images(small, 72)
  reference = signature.run({"images": x})["classes"]
  _slowly(monkeypatch, signature)
  answers = _at_once(24, lambda i: _rest(url, x[3 * i:3 * i + 3]))
  refused = [body for code, body in answers if code != 200]
  assert refused and all(body["error"].startswith(QUEUE_FULL) for body in refused)
  assert {code for code, _ in answers} == {200, 503}
  for i, (code, body) in enumerate(answers):
    if code == 200:
      assert [p["classes"] for p in body["predictions"]] == reference[3 * i:3 * i + 3].tolist()
  assert batcher.queued_rows == 0


def test_without_splitting_rest_and_grpc_refuse_as_tf_serving(tight, small, monkeypatch):
  """The text and code of shared_batch_scheduler.h's ValidateBatchTaskQueueCapacity."""
  url, stub, _, batcher, _ = tight
  monkeypatch.setattr(batcher.options, "enable_large_batch_splitting", False)
  refusal = "Task size 3 is larger than maximum input batch size 2"
  assert _rest(url, images(small, 3)) == (400, {"error": refusal})
  with pytest.raises(grpc.RpcError) as error:
    stub.Predict(_request(images(small, 3)), timeout=60)
  assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert error.value.details() == refusal
  code, body = _rest(url, images(small, 2))
  assert code == 200 and len(body["predictions"]) == 2


def test_a_request_larger_than_the_whole_queue_runs_when_the_queue_is_empty(tight, small):
  """Else it could never run: on an idle server it is taken, and runs a batch at a time."""
  url, stub, observer, _, _ = tight
  observer.rows.clear()
  answer = stub.Predict(_request(images(small, 7)), timeout=60)
  assert answer.outputs["classes"].tensor_shape.dim[0].size == 7
  assert sorted(observer.rows) == [1, 2, 2, 2]
  code, body = _rest(url, images(small, 7))
  assert code == 200 and len(body["predictions"]) == 7


def test_a_request_larger_than_the_whole_queue_waits_for_no_one():
  """With anything queued it gets the 503 of a full queue, and none of it runs."""
  signature = FakeSignature(delay=0.1)
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=2, max_enqueued_batches=1,
                                                   num_batch_threads=1))

  async def go():
    busy = asyncio.ensure_future(batcher.run("s", signature, {"x": np.ones([1])}, 1))
    await asyncio.sleep(0.02)  # the worker runs it
    waiting = asyncio.ensure_future(batcher.run("s", signature, {"x": np.ones([1])}, 1))
    await asyncio.sleep(0)
    large = await asyncio.gather(batcher.run("s", signature, {"x": np.ones([7])}, 7),
                                 return_exceptions=True)
    await asyncio.gather(busy, waiting)
    alone = await batcher.run("s", signature, {"x": np.ones([7])}, 7)
    batcher.close()
    return large[0], alone
  large, alone = asyncio.run(go())
  assert isinstance(large, status.ApiError) and large.code == status.UNAVAILABLE
  assert "task size is 7 but scheduling capacity is only 1" in large.message
  assert alone["y"].tolist() == [2.0] * 7
  assert signature.sizes == [1, 1, 2, 2, 2, 1]
