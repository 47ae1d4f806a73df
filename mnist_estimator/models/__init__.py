"""Registry of networks (each maps (features, mode, params) to logits), and models by path."""

import dataclasses
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional

from mnist_estimator.common.errors import UsageError
from mnist_estimator.models import cnn
from mnist_estimator.models import conv_learn
from mnist_estimator.models import custom
from mnist_estimator.models import deep_cnn
from mnist_estimator.models import dnn
from mnist_estimator.models import fast_cnn
from mnist_estimator.models import keras_cnn
from mnist_estimator.models import lenet
from mnist_estimator.models import linear
from mnist_estimator.models import mlp
from mnist_estimator.models import rnn
from mnist_estimator.models import weather_rnn


@dataclasses.dataclass(frozen=True)
class ModelInfo:
  """What the framework knows about one network.

  Attributes:
    name: registry name, or the PATH:FUNCTION of a model of yours: the value of --model.
    logits_fn: `(features, mode, params) -> logits`; builds variables in named scopes.
      For kind "model_fn", the whole tf.estimator model_fn.
    defaults: run settings that reproduce the model's seed text (optimizer,
      learning_rate, batch_size, steps, and any other model-defaulted RunSpec field
      whose base value it changes: dropout, hidden_units, activation, l2, ...).
    kind: "logits" (through the shared head) or "model_fn" (used as it is).
    inputs: "images", "series" (windows of a series only: the weather RNNs) or "any".
    source: the file of a model given by path (its hash is kept in the model_dir record).
  """
  name: str
  logits_fn: Callable[..., Any]
  defaults: Dict[str, Any]
  kind: str = "logits"
  inputs: str = "any"
  source: Optional[str] = None

  @property
  def registered(self) -> bool:
    return self.source is None

  def describe(self) -> Optional[str]:
    """What the header says of a model given by path (None for a registered one)."""
    if self.registered:
      return None
    if self.kind == "model_fn":
      return (f"{self.name}: a full model_fn, used as it is (its loss, metrics and export "
              "outputs; --l2, --moving_average_decay and --precision do not apply)")
    return (f"{self.name}: a logits function; the shared head adds the loss, metrics, EMA, "
            "L2, summaries and export outputs")


def _model(name: str, module: ModuleType, inputs: str = "images", **defaults: Any) -> ModelInfo:
  return ModelInfo(name, module.logits, defaults, inputs=inputs)


MODELS = {info.name: info for info in (
    # Seed 000: the cnn_mnist tf.estimator tutorial.
    _model("cnn", cnn, optimizer="sgd", learning_rate=0.001, batch_size=100, steps=20000,
           dropout=0.4, hidden_units=[1024]),
    # Seed 003: tf.contrib.learn LinearClassifier (steps=1024, batch 32); FTRL at
    # min(0.2, 1/sqrt(#columns)) = 0.2.
    _model("linear", linear, inputs="any", optimizer="ftrl", learning_rate=0.2, batch_size=32,
           steps=1024),
    # Seed 003: DNNClassifier(hidden_units=[10, 5], optimizer='Adam'); optimizers given
    # by name get contrib.learn's default learning rate 0.05.
    _model("dnn", dnn, inputs="any", optimizer="adam", learning_rate=0.05, batch_size=32,
           steps=1024, hidden_units=[10, 5]),
    # Seed 003: the book's conv_learn model_fn for learn.Estimator.
    _model("conv_learn", conv_learn, optimizer="adam", learning_rate=0.01, batch_size=32,
           steps=1024, dropout=0.5, hidden_units=[5]),
    # Seed 001: d2l's sigmoid LeNet-5 on Fashion-MNIST; Keras fit's default batch of 32,
    # 5 epochs of the 54,000 images left by validation_split.
    _model("lenet", lenet, optimizer="sgd", learning_rate=0.9, batch_size=32, steps=8438,
           hidden_units=[120, 84], activation="sigmoid"),
    # Seed 002: the MLP with L2, learning-rate decay and moving averages; lr_decay_steps 0
    # means one epoch (train examples / batch size), as the seed decays.
    _model("mlp", mlp, inputs="any", optimizer="sgd", learning_rate=0.8, batch_size=100,
           steps=30000,
           hidden_units=[500], l2=1e-4, moving_average_decay=0.99, lr_decay_rate=0.99),
    # Seed 004: the Keras CNN on MNIST; 10 epochs of 60,000 images at Keras' batch 32,
    # Adam at Keras' default 0.001.
    _model("keras_cnn", keras_cnn, optimizer="adam", learning_rate=0.001, batch_size=32,
           steps=18750, hidden_units=[64]),
    # Seed 003: the book's deep CNN on the fonts set, trained full-batch (all 2,511 fonts
    # training images) for 6,000 steps.
    _model("deep_cnn", deep_cnn, optimizer="sgd", learning_rate=0.01, batch_size=2511,
           steps=6000, dropout=0.5, hidden_units=[32]),
    # Seed 003: the book's BasicRNNCell, reading an image row by row.
    _model("rnn", rnn, inputs="any", optimizer="adam", learning_rate=0.001, batch_size=100,
           steps=5000, hidden_units=[128], activation="tanh"),
    # Seed 003: the book's BasicRNNCell (state 11) on weather; full-batch gradient descent at
    # 0.01, 100 epochs = 100 steps (batch: the 3,639 training windows of 52 weeks).
    _model("weather_rnn", weather_rnn, inputs="series", optimizer="sgd", learning_rate=0.01,
           batch_size=3639, steps=100, hidden_units=[11], activation="tanh"),
    # Beyond seed 003: an LSTM in place of the weather BasicRNNCell.
    # Beyond the seeds: the fewest seconds to 99.0% on MNIST (flags/fast.flags: one epoch).
    _model("fast_cnn", fast_cnn, optimizer="adam", learning_rate=0.015, batch_size=256,
           steps=215, hidden_units=[256], lr_schedule="one_cycle", lr_warmup=0.15,
           adam_beta1=0.7, adam_beta2=0.9, adam_epsilon=1e-7),
    ModelInfo("weather_lstm", weather_rnn.lstm_logits, dict(
        optimizer="adam", learning_rate=0.01, batch_size=64, steps=3000, hidden_units=[32],
        activation="tanh"), inputs="series"),
)}


def model_names() -> List[str]:
  """Returns the registered model names, sorted."""
  return sorted(MODELS)


def get_model(name: str) -> ModelInfo:
  """Looks a model up by name, or imports a PATH:FUNCTION (once per process).

  Args:
    name: a registered model name, or PATH:FUNCTION (see models/custom.py).

  Returns:
    The ModelInfo.

  Raises:
    UsageError: an unknown name (the message lists the names), or a PATH:FUNCTION that
      does not import or is not a model.
  """
  if custom.is_import_path(name):
    fn, kind, defaults, source = custom.load(name)
    return ModelInfo(name, fn, defaults, kind=kind, source=source or name)
  try:
    return MODELS[name]
  except KeyError:
    raise UsageError(f"unknown model {name!r}; choose --model from: "
                     f"{', '.join(model_names())}, or pass your own as PATH:FUNCTION "
                     "(./nets.py:small_cnn)") from None
