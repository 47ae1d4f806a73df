"""Request batching like TF Serving's --enable_batching: a bounded queue, a max size, a timeout."""

import asyncio
import collections
import concurrent.futures
import dataclasses
import time

import numpy as np

from mnist_estimator.common import causes
from mnist_estimator.serve import status


@dataclasses.dataclass
class BatchOptions:
  """TF Serving's batching parameters (its batching_parameters_file fields)."""
  max_batch_size: int = 64
  batch_timeout_micros: int = 1000
  max_enqueued_batches: int = 100
  num_batch_threads: int = 2


@dataclasses.dataclass
class _Task:
  servable: object
  signature: object
  feeds: dict
  size: int
  future: asyncio.Future
  enqueued: float

  @property
  def key(self):
    return id(self.servable), self.signature.name


def run_signature(signature, feeds):
  """Runs a signature; a TensorFlow error is the client's (400), as in TF Serving."""
  try:
    return signature.run(feeds)
  except Exception as e:  # pylint: disable=broad-except  # tf.errors.* and numpy feed errors
    raise status.bad_request(causes.tf_error_line(getattr(e, "message", None) or str(e))) from e


class Batcher:
  """Merges concurrent requests for one signature into batches run on a thread pool.

  `num_batch_threads` coroutines each take the oldest task, add the tasks that arrive within
  `batch_timeout_micros` of it (up to `max_batch_size` rows; no wait when no batch is running),
  run the batch in a thread and hand every task its rows. While all threads are busy the
  queue fills, so batches grow with the load. At most `max_enqueued_batches * max_batch_size`
  tasks wait; more get 503. With `options=None` every request runs alone (batching off).
  """

  def __init__(self, options=None, threads=2):
    self.options = options
    workers = options.num_batch_threads if options else threads
    self._executor = concurrent.futures.ThreadPoolExecutor(workers, "session-run")
    self._queue = None
    self._held = collections.deque()  # tasks of another signature than the batch being built
    self._workers = []
    self._busy = 0  # batches running

  async def run(self, servable, signature, feeds, size):
    """Runs `feeds` (all inputs with `size` rows) through `signature`; returns output arrays."""
    loop = asyncio.get_running_loop()
    if self.options is None or size >= self.options.max_batch_size:
      return await loop.run_in_executor(self._executor, run_signature, signature, feeds)
    if self._queue is None:
      self._start()
    if self._queue.qsize() >= self.options.max_batch_size * self.options.max_enqueued_batches:
      raise status.ApiError(status.UNAVAILABLE, "The batch scheduling queue to which this "
                            "task was submitted is full")
    task = _Task(servable, signature, feeds, size, loop.create_future(), time.monotonic())
    self._queue.put_nowait(task)
    return await task.future

  def _start(self):
    self._queue = asyncio.Queue()
    self._workers = [asyncio.ensure_future(self._work())
                     for _ in range(self.options.num_batch_threads)]

  async def _work(self):
    loop = asyncio.get_running_loop()
    while True:
      # A task whose client went away (a gRPC deadline, a closed connection) is not run.
      batch = [task for task in await self._collect() if not task.future.done()]
      if not batch:
        continue
      self._busy += 1
      try:
        await loop.run_in_executor(self._executor, _run_batch, batch, loop)
      finally:
        self._busy -= 1

  async def _collect(self):
    first = self._held.popleft() if self._held else await self._queue.get()
    batch, size = [first], first.size
    # Wait for more only while another batch runs: an idle server answers a lone request at
    # once (TF Serving always waits), a busy one lets the batch fill.
    wait = self.options.batch_timeout_micros / 1e6 if self._busy else 0.0
    deadline = first.enqueued + wait
    while size < self.options.max_batch_size:
      task = self._take_held(first.key)
      if task is None:
        try:
          task = self._queue.get_nowait()
        except asyncio.QueueEmpty:
          remaining = deadline - time.monotonic()
          if remaining <= 0:
            break
          try:
            task = await asyncio.wait_for(self._queue.get(), remaining)
          except asyncio.TimeoutError:
            break
      if task.key != first.key or size + task.size > self.options.max_batch_size:
        self._held.append(task)
        if task.key == first.key:
          break
        continue
      batch.append(task)
      size += task.size
    return batch

  def _take_held(self, key):
    for i, task in enumerate(self._held):
      if task.key == key:
        del self._held[i]
        return task
    return None

  def close(self):
    for worker in self._workers:
      worker.cancel()
    self._executor.shutdown(wait=False, cancel_futures=True)


def _run_batch(batch, loop):
  """Runs one batch in a worker thread and resolves each task's future on the event loop."""
  results = []
  try:
    if len(batch) == 1:
      results = [(batch[0], batch[0].signature.run(batch[0].feeds), None)]
    else:
      feeds = {k: np.concatenate([t.feeds[k] for t in batch]) for k in batch[0].feeds}
      outputs = batch[0].signature.run(feeds)
      start = 0
      for task in batch:
        rows = slice(start, start + task.size)
        results.append((task, {k: v[rows] for k, v in outputs.items()}, None))
        start += task.size
  except Exception:  # pylint: disable=broad-except  # one bad task must not fail the others
    results = []
    for task in batch:
      try:
        results.append((task, run_signature(task.signature, task.feeds), None))
      except status.ApiError as e:
        results.append((task, None, e))
  loop.call_soon_threadsafe(_resolve, results)


def _resolve(results):
  for task, outputs, error in results:
    if task.future.done():  # the client went away
      continue
    if error is not None:
      task.future.set_exception(error)
    else:
      task.future.set_result(outputs)
