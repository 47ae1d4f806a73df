"""Ctrl-C and SIGTERM while training: stop at the next step, save a checkpoint, exit 130/143."""

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any, Callable, Dict, Optional, Union

import tensorflow as tf

from mnist_estimator.common.errors import UsageError

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The signal that arrived (None: none yet) and the last step run.
_received: Dict[str, Optional[int]] = {"signum": None, "step": None}
# signal -> the handler before StopOnSignal's
_previous: Dict[int, Union[Callable[[int, Optional[FrameType]], Any], int, None]] = {}


class Interrupted(UsageError):
  """Training stopped on a signal after saving a checkpoint; exit_code is 128 + the signal."""

  line_prefix = ""  # cli prints the message as it is, not as an `error:`

  def __init__(self, step: Optional[int], signum: int, saved: bool = True) -> None:
    super().__init__(f"interrupted at step {step}; checkpoint saved; run the same command "
                     "to resume" if saved else
                     f"interrupted at step {step} (a cluster's chief saves the checkpoints)")
    self.exit_code = 128 + signum


def _handler(signum: int, frame: Optional[FrameType]) -> None:
  del frame
  if _received["signum"] is not None:  # a second signal: leave now, the saved files stay
    sys.stderr.write(f"interrupted again; exiting without saving (the last checkpoint, "
                     f"step {_received['step'] or 'before this run'}, is intact)\n")
    sys.stderr.flush()
    os._exit(128 + signum)  # pylint: disable=protected-access
  _received["signum"] = signum


class StopOnSignal(tf.compat.v1.train.SessionRunHook):
  """Installs the SIGINT/SIGTERM handlers while training; requests a stop after one arrives.

  tf.estimator's CheckpointSaverHook saves the final step in its end(), so a stop
  requested here leaves a checkpoint of the last step run.
  """

  def __init__(self) -> None:
    self._step: Optional[tf.Variable] = None  # the global step

  def begin(self) -> None:
    _received.update(signum=None, step=None)
    self._step = tf.compat.v1.train.get_global_step()
    if threading.current_thread() is threading.main_thread():
      for signum in SIGNALS:
        previous = signal.signal(signum, _handler)
        _previous.setdefault(signum, previous)

  def before_run(self, run_context: tf.compat.v1.train.SessionRunContext,
                 ) -> tf.compat.v1.train.SessionRunArgs:
    return tf.compat.v1.train.SessionRunArgs(self._step)

  def after_run(self, run_context: tf.compat.v1.train.SessionRunContext,
                run_values: tf.compat.v1.train.SessionRunValues) -> None:
    _received["step"] = int(run_values.results)
    if _received["signum"] is not None:
      run_context.request_stop()

  def end(self, session: tf.compat.v1.Session) -> None:
    _received["step"] = int(session.run(self._step))
    # The handlers stay until check() so that a signal during the final save is caught too.


def restore() -> None:
  """Puts back the handlers StopOnSignal replaced (again: a no-op).

  Called however training ends: after an error too, or else Ctrl-C in the Python session of
  an API user would set a flag nobody reads instead of raising KeyboardInterrupt.
  """
  if threading.current_thread() is threading.main_thread():
    for signum, previous in list(_previous.items()):
      signal.signal(signum, previous)
      del _previous[signum]


def check(saved: bool = True) -> None:
  """Restores the signal handlers; raises Interrupted if a signal stopped the training.

  Args:
    saved: this task saved a checkpoint as it stopped (a cluster's workers do not).
  """
  restore()
  signum, _received["signum"] = _received["signum"], None
  if signum is not None:
    raise Interrupted(_received["step"], signum, saved)
