"""The learning-rate schedules (decay, one_cycle) and the optimizers' settings (Adam's betas)."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.head import optimizers


def _rates(params, steps):
  graph = tf.Graph()
  with graph.as_default():
    step = tf.compat.v1.placeholder(tf.int64, [])
    lr = optimizers.learning_rate(params, step)
    with tf.compat.v1.Session(graph=graph) as session:
      return [float(session.run(lr, {step: s})) for s in steps]


def test_one_cycle_rises_over_the_warmup_then_falls_to_zero():
  params = {"learning_rate": 0.01, "lr_schedule": "one_cycle", "lr_warmup": 0.25,
            "total_steps": 200}
  rates = _rates(params, [0, 25, 50, 125, 200, 250])
  np.testing.assert_allclose(rates, [0.001, 0.0055, 0.01, 0.005, 0.0, 0.0], atol=1e-7)


def test_decay_is_constant_or_stairs_as_before():
  assert _rates({"learning_rate": 0.1}, [0, 500]) == pytest.approx([0.1, 0.1])
  stairs = {"learning_rate": 0.1, "lr_schedule": "decay", "lr_decay_rate": 0.5,
            "lr_decay_steps": 100}
  assert _rates(stairs, [0, 99, 100, 250]) == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_adam_takes_its_betas_and_epsilon_from_params_and_others_ignore_them():
  with tf.Graph().as_default():
    adam = optimizers.build("adam", 0.01, {"adam_beta1": 0.7, "adam_beta2": 0.9,
                                           "adam_epsilon": 1e-7})
    # pylint: disable=protected-access
    assert (adam._beta1, adam._beta2, adam._epsilon) == (0.7, 0.9, 1e-7)
    default = optimizers.build("adam", 0.01)
    assert (default._beta1, default._beta2, default._epsilon) == (0.9, 0.999, 1e-8)
    assert isinstance(optimizers.build("sgd", 0.1, {"adam_beta1": 0.7}),
                      tf.compat.v1.train.GradientDescentOptimizer)
  with pytest.raises(UsageError, match="choose --optimizer from: adagrad, adam"):
    optimizers.build("adamw", 0.1)


def test_the_schedule_help_lists_every_schedule():
  assert all(name in optimizers.schedule_help() for name in optimizers.SCHEDULES)
