"""Registry of networks: each model maps (features, mode, params) to logits."""

import dataclasses
from typing import Any, Callable, Dict, Tuple

from mnist_estimator.errors import UsageError
from mnist_estimator.models import cnn
from mnist_estimator.models import conv_learn
from mnist_estimator.models import dnn
from mnist_estimator.models import linear

# Params every model's graph depends on; a model adds its own in `graph_keys`.
COMMON_GRAPH_KEYS = ("model", "image_shape", "n_classes")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
  """What the framework knows about one network.

  Attributes:
    name: registry name, the value of --model.
    logits_fn: `(features, mode, params) -> logits`; builds variables in named scopes.
    defaults: run settings that reproduce the model's seed text (optimizer,
      learning_rate, batch_size, steps, dropout, hidden_units, activation).
    graph_keys: params (besides COMMON_GRAPH_KEYS) that change the variables'
      shapes; a model_dir records them and refuses a run that differs.
    seed: where the model comes from, for help texts and the README.
  """
  name: str
  logits_fn: Callable[..., Any]
  defaults: Dict[str, Any]
  graph_keys: Tuple[str, ...] = ()
  seed: str = ""


MODELS = {
    "cnn": ModelInfo(
        "cnn", cnn.logits,
        dict(optimizer="sgd", learning_rate=0.001, batch_size=100, steps=20000,
             dropout=0.4, hidden_units=[1024], activation="relu"),
        graph_keys=("hidden_units",),
        seed="000: the cnn_mnist tf.estimator tutorial"),
    "linear": ModelInfo(
        "linear", linear.logits,
        # contrib.learn LinearClassifier: FTRL at min(0.2, 1/sqrt(#columns)) = 0.2.
        dict(optimizer="ftrl", learning_rate=0.2, batch_size=32, steps=1024,
             dropout=0.0, hidden_units=[], activation="relu"),
        seed="003: tf.contrib.learn LinearClassifier (fit steps=1024, batch_size=32)"),
    "dnn": ModelInfo(
        "dnn", dnn.logits,
        # contrib.learn DNNClassifier(hidden_units=[10, 5], optimizer='Adam') with its
        # default learning rate 0.05 for optimizers given by name.
        dict(optimizer="adam", learning_rate=0.05, batch_size=32, steps=1024,
             dropout=0.0, hidden_units=[10, 5], activation="relu"),
        graph_keys=("hidden_units",),
        seed="003: tf.contrib.learn DNNClassifier (hidden [10, 5], Adam)"),
    "conv_learn": ModelInfo(
        "conv_learn", conv_learn.logits,
        dict(optimizer="adam", learning_rate=0.01, batch_size=32, steps=1024,
             dropout=0.5, hidden_units=[5], activation="relu"),
        graph_keys=("hidden_units",),
        seed="003: the book's conv_learn model_fn for learn.Estimator"),
}


def model_names():
  """Returns the registered model names, sorted."""
  return sorted(MODELS)


def get_model(name):
  """Looks a model up by name.

  Args:
    name: a registered model name.

  Returns:
    The ModelInfo.

  Raises:
    UsageError: if the name is not registered; the message lists the names.
  """
  try:
    return MODELS[name]
  except KeyError:
    raise UsageError(f"unknown model {name!r}; choose --model from: "
                     f"{', '.join(model_names())}") from None
