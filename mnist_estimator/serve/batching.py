"""Request batching like TF Serving's --enable_batching: a bounded queue, a max size, a timeout."""

import asyncio
import collections
import concurrent.futures
import logging
import time
from typing import TYPE_CHECKING, Any, Deque, List, Optional, Tuple

from mnist_estimator.runtime import chunks
from mnist_estimator.serve import batch_tasks
from mnist_estimator.serve.batch_tasks import BatchOptions  # the batcher's settings, named here

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.runtime import Signature
  from mnist_estimator.serve.servable import Servable

# Kept here: the warm-up and other modules call batching.run_signature.
run_signature = batch_tasks.run_signature

# Rows of one session run when batching is off. One run of 10,000 CNN rows left ~2 GB held by
# TensorFlow's allocator; 64/256/1,024-row runs add 16/48/250 MB and take as long or less.
UNBATCHED_RUN_ROWS = 256
# A request with this many input bytes (~5,000 28x28 float images) or more is followed by a
# malloc_trim this many seconds later (see Batcher._trim_soon).
TRIM_AFTER_BYTES = 16 << 20
TRIM_DELAY_SECONDS = 1.0


class Batcher:
  """Merges concurrent requests for one signature into batches run on a thread pool.

  `num_batch_threads` coroutines each take the oldest task, add the tasks that arrive within
  `batch_timeout_micros` of it (up to `max_batch_size` rows; no wait when no batch is running),
  run the batch in a thread and hand every task its rows. While all threads are busy the
  queue fills, so batches grow with the load. Every request queues, whatever its size: one of
  more than `max_batch_size` rows as pieces of at most that many (or refused, with splitting
  off). At most `max_enqueued_batches * max_batch_size` rows wait; a request that does not fit
  whole gets 503 and none of it runs (one larger than the whole queue is taken when the queue
  is empty). With `options=None` every request runs alone (batching
  off), `UNBATCHED_RUN_ROWS` rows at a time.
  """

  def __init__(self, options: Optional[BatchOptions] = None, threads: int = 2,
               observer: Optional[Any] = None) -> None:
    """Makes the batcher; its workers start with the first request.

    Args:
      options: BatchOptions, or None for no batching.
      threads: the threads running requests when batching is off.
      observer: None, or an object whose `batch(servable, rows)` is called on the event loop
        once per batch run (rows: all its tasks' rows), e.g. for metrics. Not called with
        batching off, as TF Serving has no batches then.
    """
    self.options = options
    self.observer = observer
    workers = options.num_batch_threads if options else threads
    self._executor = concurrent.futures.ThreadPoolExecutor(workers, "session-run")
    self._queue: Optional["asyncio.Queue[batch_tasks.Task]"] = None
    # tasks of another signature than the batch being built
    self._held: Deque[batch_tasks.Task] = collections.deque()
    self._workers: List["asyncio.Future[None]"] = []
    self._busy = 0  # batches running
    self._queued_rows = 0  # rows enqueued and not yet handed to a batch run
    self._trim_pending = False

  @property
  def queued_rows(self) -> int:
    """Rows waiting in the queue now (a request run alone counts a batch; 0: batching off)."""
    return self._queued_rows

  async def run(self, servable: "Servable", signature: "Signature", feeds: chunks.Feeds,
                size: int) -> chunks.Outputs:
    """Runs `feeds` (all inputs with `size` rows) through `signature`; returns output arrays.

    A `size` larger than any input's rows (inference.ALONE: inputs not shaped as declared)
    runs alone, whole, as one batch.

    Raises:
      ApiError: INVALID_ARGUMENT for a request larger than max_batch_size with splitting off,
        UNAVAILABLE when the queue cannot take all its rows, INVALID_ARGUMENT for a TensorFlow
        error of the run.
    """
    loop = asyncio.get_running_loop()
    try:
      if self.options is None:
        return await loop.run_in_executor(self._executor, batch_tasks.run_in_chunks, signature,
                                          feeds, size, UNBATCHED_RUN_ROWS)
      futures = self._enqueue(servable, signature, feeds, size, loop)
      try:
        return chunks.concatenate(await asyncio.gather(*futures))
      finally:  # a failed piece or a client gone: the pieces not run yet are not run
        for future in futures:
          future.cancel()
    finally:
      if sum(getattr(a, "nbytes", 0) for a in feeds.values()) >= TRIM_AFTER_BYTES:
        self._trim_soon(loop)

  def _enqueue(self, servable: "Servable", signature: "Signature", feeds: chunks.Feeds,
               size: int, loop: asyncio.AbstractEventLoop) -> List["asyncio.Future[Any]"]:
    """Queues the request (in pieces if larger than max_batch_size); the pieces' futures."""
    options = self.options
    assert options is not None, "run() queues only with batching on"
    limit = options.max_batch_size
    now = time.monotonic()
    if size <= limit or chunks.splittable(feeds, size):
      if size > limit and not options.enable_large_batch_splitting:
        raise batch_tasks.too_large(size, limit)
      tasks = [batch_tasks.Task(servable, signature, part, rows, loop.create_future(), now)
               for rows, part in chunks.pieces(feeds, size, limit)]
    else:  # rows that must not merge (inference.ALONE): a batch of its own, one in the queue
      tasks = [batch_tasks.Task(servable, signature, feeds, size, loop.create_future(), now,
                                weight=limit, rows=chunks.rows_of(feeds))]
    weight = sum(task.weight for task in tasks)
    queue = self._start(options) if self._queue is None else self._queue
    capacity = limit * options.max_enqueued_batches
    # A request larger than the whole queue is taken when the queue is empty (else it could
    # never run): its pieces still run a batch at a time, and others get 503 meanwhile.
    if self._queued_rows + weight > capacity and not (weight > capacity and
                                                      self._queued_rows == 0):
      raise batch_tasks.queue_full(weight, self._queued_rows, options)
    for task in tasks:
      queue.put_nowait(task)
    self._queued_rows += weight
    return [task.future for task in tasks]

  def _trim_soon(self, loop: asyncio.AbstractEventLoop) -> None:
    """Hands glibc's free heap back to the OS a moment after a large request.

    Why: a request's buffers (31 MB apiece for 10,000 images: the message, its parse, the
    feeds) are freed only once the answer is sent, and glibc keeps freed heap; a malloc_trim a
    second later took the server, 10 s after a 10,000-image gRPC Predict, from 765 MB to
    550-600 (start 486). MALLOC_ARENA_MAX=2 did not help. One pending trim at a time.
    """
    if self._trim_pending:
      return
    self._trim_pending = True

    def trim() -> None:
      self._trim_pending = False
      loop.run_in_executor(None, batch_tasks.trim_malloc)
    loop.call_later(TRIM_DELAY_SECONDS, trim)

  def _start(self, options: BatchOptions) -> "asyncio.Queue[batch_tasks.Task]":
    queue: "asyncio.Queue[batch_tasks.Task]" = asyncio.Queue()
    self._queue = queue
    self._workers = [asyncio.ensure_future(self._work(queue, options))
                     for _ in range(options.num_batch_threads)]
    return queue

  async def _work(self, queue: "asyncio.Queue[batch_tasks.Task]", options: BatchOptions) -> None:
    loop = asyncio.get_running_loop()
    while True:
      # A task whose client went away (a gRPC deadline, a closed connection) is not run.
      collected = await self._collect(queue, options)
      self._queued_rows -= sum(task.weight for task in collected)
      batch = [task for task in collected if not task.future.done()]
      if not batch:
        continue
      self._observe(batch)
      self._busy += 1
      try:
        await loop.run_in_executor(self._executor, batch_tasks.run_batch, batch, loop)
      finally:
        self._busy -= 1

  async def _collect(self, queue: "asyncio.Queue[batch_tasks.Task]",
                     options: BatchOptions) -> List[batch_tasks.Task]:
    first = self._held.popleft() if self._held else await queue.get()
    batch, size = [first], first.size
    # Wait for more only while another batch runs: an idle server answers a lone request at
    # once (TF Serving always waits), a busy one lets the batch fill.
    wait = options.batch_timeout_micros / 1e6 if self._busy else 0.0
    deadline = first.enqueued + wait
    while size < options.max_batch_size:
      task = self._take_held(first.key)
      if task is None:
        try:
          task = queue.get_nowait()
        except asyncio.QueueEmpty:
          remaining = deadline - time.monotonic()
          if remaining <= 0:
            break
          try:
            task = await asyncio.wait_for(queue.get(), remaining)
          except asyncio.TimeoutError:
            break
      if task.key != first.key or size + task.size > options.max_batch_size:
        self._held.append(task)
        if task.key == first.key:
          break
        continue
      batch.append(task)
      size += task.size
    return batch

  def _observe(self, batch: List[batch_tasks.Task]) -> None:
    if self.observer is None:
      return
    try:
      self.observer.batch(batch[0].servable, sum(task.rows for task in batch))
    except Exception:  # pylint: disable=broad-except  # metrics must not stop the batching
      logging.exception("the batch observer failed")

  def _take_held(self, key: Tuple[int, str]) -> Optional[batch_tasks.Task]:
    for i, task in enumerate(self._held):
      if task.key == key:
        del self._held[i]
        return task
    return None

  def close(self) -> None:
    for worker in self._workers:
      worker.cancel()
    self._executor.shutdown(wait=False, cancel_futures=True)
