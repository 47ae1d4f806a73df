"""The batcher's settings and tasks: a request cut into pieces, TF Serving's queue errors, a run."""

import asyncio
import ctypes
import ctypes.util
import dataclasses
import functools
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mnist_estimator.common import causes
from mnist_estimator.runtime import chunks
from mnist_estimator.serve import status

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.runtime import Signature
  from mnist_estimator.serve.servable import Servable

Outputs = Dict[str, np.ndarray]


@dataclasses.dataclass
class BatchOptions:
  """TF Serving's batching parameters (its batching_parameters_file fields).

  enable_large_batch_splitting: a request of more than max_batch_size rows is cut into pieces
    of max_batch_size rows that queue (and count against the queue) like requests; False
    refuses it as TF Serving does. TF Serving's own splitting also caps a request at its
    max_batch_size and cuts pieces of max_execution_batch_size; here there is no cap and
    max_batch_size is the piece size.
  """
  max_batch_size: int = 64
  batch_timeout_micros: int = 1000
  max_enqueued_batches: int = 100
  num_batch_threads: int = 2
  enable_large_batch_splitting: bool = True


@dataclasses.dataclass
class Task:
  """Rows of one request waiting in the queue: the whole request or one piece of it.

  size: the rows it adds to a batch (a request that must run alone: more than any batch);
  weight: the rows it holds in the queue; rows: the rows the session sees.
  """
  servable: "Servable"
  signature: "Signature"
  feeds: Mapping[str, Any]
  size: int
  future: "asyncio.Future[Any]"  # its Outputs
  enqueued: float
  weight: int = 0
  rows: int = 0

  def __post_init__(self) -> None:
    self.weight = self.weight or self.size
    self.rows = self.rows or self.size

  @property
  def key(self) -> Tuple[int, str]:
    return id(self.servable), self.signature.name


def run_signature(signature: "Signature", feeds: Mapping[str, Any]) -> Outputs:
  """Runs a signature; a TensorFlow error is the client's (400), as in TF Serving."""
  try:
    return signature.run(feeds)
  except Exception as e:  # pylint: disable=broad-except  # tf.errors.* and numpy feed errors
    raise status.bad_request(causes.tf_error_line(getattr(e, "message", None) or str(e))) from e


def run_in_chunks(signature: "Signature", feeds: Mapping[str, Any], size: int,
                  limit: int) -> Outputs:
  """Runs `feeds` `limit` rows at a time (one after the other) and joins the outputs.

  Why: one session run of 10,000 CNN rows leaves ~2 GB in TensorFlow's CPU allocator (oneDNN
  on), which malloc_trim does not return; runs of 256 rows add ~50 MB and take no longer.
  """
  return chunks.run_in_chunks(functools.partial(run_signature, signature), feeds, limit, size)


def too_large(size: int, limit: int) -> status.ApiError:
  """TF Serving's refusal of a task above max_batch_size when splitting is off.

  The words and code of Queue::ValidateBatchTaskQueueCapacity (tensorflow/core/kernels/
  batching_util/shared_batch_scheduler.h, TF 2.15, which TF Serving 2.15.1 builds on).
  """
  return status.ApiError(status.INVALID_ARGUMENT,
                         f"Task size {size} is larger than maximum input batch size {limit}")


def queue_full(size: int, queued: int, options: BatchOptions) -> status.ApiError:
  """TF Serving's UNAVAILABLE for a task that does not fit the queue (shared_batch_scheduler.h).

  The queue is counted in rows, as that scheduler's SchedulingCapacity: `queued` rows fill
  ceil(queued / max_batch_size) batches, the last one open.
  """
  limit, most = options.max_batch_size, options.max_enqueued_batches
  batches = max(1, -(-queued // limit))
  open_rows = queued - (batches - 1) * limit
  prefix = "The batch scheduling queue to which this task was submitted is full"
  if not options.enable_large_batch_splitting:
    return status.ApiError(status.UNAVAILABLE, f"{prefix}; currently {batches} batches enqueued"
                           f" and max_enqueued_batches is {most}")
  return status.ApiError(
      status.UNAVAILABLE,
      f"{prefix}; task size is {size} but scheduling capacity is only "
      f"{max(0, limit * most - queued)} (num_enqueued_batches={batches}, max_enqueued_batches="
      f"{most}, open_batch_size={open_rows}, max_execution_batch_size={limit})")


@functools.lru_cache(maxsize=1)
def _libc_malloc_trim() -> Optional[Callable[[int], int]]:
  try:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
  except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
    return None


def trim_malloc() -> None:
  """glibc's malloc_trim(0): returns the free heap of every arena to the OS (else a no-op)."""
  trim = _libc_malloc_trim()
  if trim is not None:
    trim(0)


# A task's outcome: (task, its outputs or None, its error or None).
Result = Tuple[Task, Optional[Outputs], Optional[status.ApiError]]


def run_batch(batch: Sequence[Task], loop: asyncio.AbstractEventLoop) -> None:
  """Runs one batch in a worker thread and resolves each task's future on the event loop."""
  results: List[Result] = []
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


def _resolve(results: Sequence[Result]) -> None:
  for task, outputs, error in results:
    if task.future.done():  # the client went away, or another piece of its request failed
      continue
    if error is not None:
      task.future.set_exception(error)
    else:
      task.future.set_result(outputs)
