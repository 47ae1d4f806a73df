"""A batch cut into row chunks and the outputs joined back: bounded memory, the same answers."""

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

Feeds = Mapping[str, Any]
Outputs = Dict[str, np.ndarray]


def pieces(feeds: Feeds, size: int, limit: int) -> List[Tuple[int, Dict[str, Any]]]:
  """`feeds` as consecutive slices of at most `limit` rows: [(rows, feeds), ...] (views)."""
  if size <= limit:
    return [(size, dict(feeds))]  # as given: a request's own shapes are the runtime's to judge
  return [(min(limit, size - start), {k: v[start:start + limit] for k, v in feeds.items()})
          for start in range(0, size, limit)]


def concatenate(outputs: List[Outputs]) -> Outputs:
  """The pieces' output dicts joined back in order along the rows."""
  if len(outputs) == 1:
    return outputs[0]
  return {k: np.concatenate([out[k] for out in outputs]) for k in outputs[0]}


def splittable(feeds: Feeds, size: int) -> bool:
  """Whether every input has `size` rows on axis 0 (callers pass a huge size for the rest)."""
  return all(np.ndim(array) and len(array) == size for array in feeds.values())


def rows_of(feeds: Feeds) -> int:
  """The rows a request holds as the runtime sees them (1 for an input without axis 0)."""
  return max((len(array) if np.ndim(array) else 1 for array in feeds.values()), default=1)


def run_in_chunks(run: Callable[[Dict[str, Any]], Outputs], feeds: Feeds, limit: int,
                  size: Optional[int] = None) -> Outputs:
  """`run(feeds)` on at most `limit` rows at a time, one after the other, outputs joined.

  Args:
    run: runs one chunk's feeds.
    feeds: {input key: array}.
    limit: the most rows of one call.
    size: the rows of the feeds (default: rows_of); feeds whose inputs do not all have
      `size` rows run whole.
  """
  size = rows_of(feeds) if size is None else size
  if size <= limit or not splittable(feeds, size):
    return run(dict(feeds))
  return concatenate([run(part) for _, part in pieces(feeds, size, limit)])
