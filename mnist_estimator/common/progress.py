"""Training progress for a person: a live line on a terminal, plain lines otherwise, with ETA."""

import sys
import time
from typing import List, Optional, TextIO, Tuple


def _clock(seconds: float) -> str:
  """0:07, 12:05 or 1:02:03."""
  seconds = int(round(max(0.0, seconds)))
  hours, rest = divmod(seconds, 3600)
  return (f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours
          else f"{rest // 60}:{rest % 60:02d}")


class Progress:
  """Training progress: a live line on a terminal, plain lines every N steps otherwise.

  Attributes:
    rates: every steps/s figure shown, for train_stats.json and benchmarks.
  """

  def __init__(self, total_steps: int, batch_size: int, every_n: int = 100,
               stream: Optional[TextIO] = None, tty: Optional[bool] = None) -> None:
    self._total = total_steps
    self._batch = batch_size
    self._every = every_n
    self._stream = stream or sys.stdout
    self._tty = self._stream.isatty() if tty is None else tty
    # (step, time) of the first step seen: the rate and ETA count from it
    self._start: Optional[Tuple[int, float]] = None
    self._last: Optional[Tuple[int, float]] = None  # (step, time) of the previous line
    self._open_line = False
    self.rates: List[float] = []

  @property
  def fetch_every(self) -> int:
    """How often the hook should fetch values: often on a terminal, else once a line."""
    return min(self._every, 10) if self._tty else self._every

  def line(self, step: int, loss: Optional[float], accuracy: Optional[float],
           now: float) -> str:
    """The progress text at `step`; records the rate since the previous line."""
    parts = ([f"step {step:,}/{self._total:,}", f"{100.0 * step / self._total:5.1f}%"]
             if self._total else [f"step {step:,}"])
    parts += [f"loss {loss:.4f}"] if loss is not None else []
    parts += [f"batch accuracy {accuracy:.3f}"] if accuracy is not None else []
    if (self._last is not None and self._start is not None and step > self._last[0]
        and now > self._last[1]):
      rate = (step - self._last[0]) / (now - self._last[1])
      self.rates.append(rate)
      overall = (step - self._start[0]) / (now - self._start[1])
      parts += [f"{rate:.1f} steps/s", f"{rate * self._batch:,.0f} images/s"]
      if self._total:
        parts.append(f"ETA {_clock((self._total - step) / overall)}")
    if self._start is None:
      self._start = (step, now)
    self._last = (step, now)
    return "  ".join(parts)

  def update(self, step: int, loss: Optional[float], accuracy: Optional[float],
             now: Optional[float] = None) -> str:
    """Shows progress at `step` (the caller calls every fetch_every steps); returns the text."""
    now = time.time() if now is None else now
    text = self.line(step, loss, accuracy, now)
    if self._tty:
      self._stream.write("\r" + text + "\x1b[K")
      self._open_line = True
    else:
      self._stream.write(text + "\n")
    self._stream.flush()
    return text

  def close(self) -> None:
    """Ends the live line, so the next output starts on a line of its own."""
    if self._open_line:
      self._stream.write("\n")
      self._stream.flush()
      self._open_line = False
