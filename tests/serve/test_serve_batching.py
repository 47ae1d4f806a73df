"""The batcher: concurrent requests merge into batches; limits and errors stay per request."""

import asyncio
import threading

import numpy as np

from mnist_estimator.serve import batching, status


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


def test_a_large_request_runs_alone_and_a_full_queue_is_503():
  signature = FakeSignature(delay=0.05)
  batcher = batching.Batcher(batching.BatchOptions(max_batch_size=4, max_enqueued_batches=1,
                                                   num_batch_threads=1))
  results = _run_all(batcher, signature, [np.ones([5])] + [np.ones([1])] * 12)
  assert results[0]["y"].shape == (5,)
  assert 5 in signature.sizes
  full = [r for r in results if isinstance(r, status.ApiError)]
  assert full and all(e.status == 503 and "queue" in e.message for e in full)
  assert len(full) < 12


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
