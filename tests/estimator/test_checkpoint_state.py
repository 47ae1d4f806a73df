"""A state file may name a checkpoint not called model.ckpt-N: it is verified like any other."""

import os

import pytest
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.estimator import checkpoints


def _save(prefix):
  """A one-variable checkpoint at `prefix` (.index and .data-00000-of-00001), no state file."""
  with tf.Graph().as_default():
    weight = tf.compat.v1.get_variable("w", initializer=tf.ones([64]))
    saver = tf.compat.v1.train.Saver([weight])
    with tf.compat.v1.Session() as session:
      session.run(weight.initializer)
      saver.save(session, prefix, write_meta_graph=False, write_state=False)
  return prefix


@pytest.fixture
def model_dir(tmp_path):
  """model.ckpt-1, and "best" beside it, which the state file names."""
  _save(str(tmp_path / "model.ckpt-1"))
  best = _save(str(tmp_path / "best"))
  tf.compat.v1.train.update_checkpoint_state(str(tmp_path), best)
  return tmp_path


def test_a_whole_checkpoint_of_another_name_is_used(model_dir):
  best = str(model_dir / "best")
  assert checkpoints.verify(best) is None
  assert checkpoints.ensure(str(model_dir), announce=pytest.fail) == best


def test_an_unreadable_one_of_another_name_says_how_to_fall_back(model_dir):
  best = str(model_dir / "best")
  data = f"{best}.data-00000-of-00001"
  os.truncate(data, os.path.getsize(data) // 2)
  assert checkpoints.verify(best)  # the reason, not an AttributeError
  with pytest.raises(UsageError, match="--fallback_checkpoint to use model.ckpt-1"):
    checkpoints.ensure(str(model_dir))
  announced = []
  used = checkpoints.ensure(str(model_dir), fallback=True, announce=announced.append)
  assert used == str(model_dir / "model.ckpt-1") and "falling back" in announced[0]
