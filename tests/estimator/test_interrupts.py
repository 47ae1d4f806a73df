"""interrupts: what a task stopped by a signal says, and its exit code."""

import signal

from mnist_estimator.estimator import interrupts


def test_only_a_task_that_saved_says_so():
  chief = interrupts.Interrupted(12, signal.SIGTERM)
  assert str(chief) == ("interrupted at step 12; checkpoint saved; run the same command to "
                        "resume") and chief.exit_code == 143
  worker = interrupts.Interrupted(12, signal.SIGINT, saved=False)  # a cluster's worker
  assert str(worker) == "interrupted at step 12 (a cluster's chief saves the checkpoints)"
  assert worker.exit_code == 130
