"""The one line of a TensorFlow error: the cause, not the headline (checkpoints and serving)."""

import pytest

from mnist_estimator.common import causes


@pytest.mark.parametrize("message, expected", [
    # A checkpoint that does not restore: the line before the node marker.
    ("Graph execution error:\n\nDetected at node 'save/RestoreV2' defined at (most recent "
     "call last):\n  File \"x.py\", line 1, in <module>\nNode: 'save/RestoreV2'\n"
     "TensorBundle at m/model.ckpt-3 shard 0: Checksum does not match\n"
     "\t [[{{node save/RestoreV2}}]]\n\nOriginal stack trace for 'save/RestoreV2':\n"
     "  File \"x.py\", line 1\n    main()\n",
     "TensorBundle at m/model.ckpt-3 shard 0: Checksum does not match"),
    # A serving request the model refuses.
    ("Graph execution error:\n\nDetected at node 'P' defined at:\nNode: 'P'\nKey: x. Bad\n"
     "\t [[{{node P}}]]", "Key: x. Bad"),
    ("plain", "plain"),
    ("", "unknown error"),
])
def test_tf_error_line(message, expected):
  assert causes.tf_error_line(message) == expected
