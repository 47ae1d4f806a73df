"""runlog.import_tensorflow: TensorFlow's objects frozen out of the cyclic collector."""

import gc
import sys


def test_tensorflows_objects_are_frozen_and_the_collector_left_on():
  # conftest imported TensorFlow through cli.import_tensorflow, as every command does.
  assert "tensorflow" in sys.modules
  assert gc.get_freeze_count() > 100_000  # about 400,000 objects with TF 2.15
  assert gc.isenabled()
