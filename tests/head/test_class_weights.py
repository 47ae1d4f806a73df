"""--class_weight: balanced against the formula, the file's syntaxes and errors, the loss."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.head import class_weights
from mnist_estimator.head import multi_class
from mnist_estimator.run import runner
from mnist_estimator.run.spec import RunSpec

ModeKeys = tf.estimator.ModeKeys
NAMES = ["cat", "dog", "eel"]


def test_balanced_is_n_over_classes_times_count():
  labels = [0] * 6 + [1] * 3 + [2]  # n = 10, k = 3
  got = class_weights.resolve("balanced", np.array(labels), NAMES)
  assert got == pytest.approx([10 / 18, 10 / 9, 10 / 3])
  # Over the training set the weights average 1: the loss keeps its scale.
  assert np.mean([got[label] for label in labels]) == pytest.approx(1.0)


def test_balanced_guards_a_class_without_images():
  assert class_weights.balanced([0, 0, 2], 3) == pytest.approx([0.5, 1.0, 1.0])
  with pytest.raises(ValueError, match="labels from 0 to 3 for 3 classes"):
    class_weights.balanced([0, 3], 3)


def test_none_and_empty_mean_no_weights():
  assert class_weights.resolve(None, [0, 1], NAMES) is None
  assert class_weights.resolve("", [0, 1], NAMES) is None


@pytest.mark.parametrize("text", [
    "dog:2\neel: 0.5\n",
    "# heavier dogs\n\ndog 2   # a comment\n  eel\t0.5\n",
    '{"dog": 2, "eel": 0.5}',
    '\n  {"dog": 2.0, "eel": "0.5"}\n',
])
def test_a_file_in_each_syntax(tmp_path, text):
  path = tmp_path / "weights.txt"
  path.write_text(text)
  assert class_weights.resolve(str(path), [0], NAMES) == [1.0, 2.0, 0.5]


def test_names_may_hold_colons_and_spaces(tmp_path):
  path = tmp_path / "w"
  path.write_text("a:b:3\nsea lion 4\n")
  assert class_weights.resolve(str(path), [0], ["a:b", "sea lion", "x"]) == [3.0, 4.0, 1.0]


@pytest.mark.parametrize("text, match", [
    ("cow:2\n", r"line 1 \('cow:2'\): 'cow' is not a class of this data; use one of: "
                "cat, dog, eel"),
    ("dog:2\neel:0\n", r"line 2 \('eel:0'\): the weight '0' is not a positive number"),
    ("dog:-1\n", r"line 1 .*'-1' is not a positive number"),
    ("dog:lots\n", r"line 1 \('dog:lots'\): the weight 'lots' is not a positive number"),
    ("dog:nan\n", "'nan' is not a positive number"),
    ("dog\n", r"line 1 \('dog'\) is not name:weight"),
    ("dog:2\ndog:3\n", "line 2 .* lists the class dog again"),
    ("# nothing\n\n", "lists no class; add name:weight lines"),
    ('{"dog": true}', "entry 'dog': the weight True is not a positive number"),
    ('{"dog": [2]}', r"the weight \[2\] is not a positive number"),
    ('{"cow": 2}', "entry 'cow': 'cow' is not a class of this data; use one of"),
    ("[1, 2]", "holds a JSON list, not an object"),
    ('{"dog": 2', "is not valid JSON"),
])
def test_bad_files_name_the_line(tmp_path, text, match):
  path = tmp_path / "w.txt"
  path.write_text(text)
  with pytest.raises(UsageError, match=match):
    class_weights.resolve(str(path), [0], NAMES)


def test_bad_values(tmp_path):
  with pytest.raises(UsageError, match=r"--class_weight=foo is neither balanced nor an "
                                       r"existing file; pass --class_weight=balanced or a FILE"):
    class_weights.resolve("foo", [0], NAMES)
  with pytest.raises(UsageError, match=r"--class_weight=.*gone.txt: no such file; pass "):
    class_weights.resolve(str(tmp_path / "gone.txt"), [0], NAMES)
  with pytest.raises(UsageError, match="is a folder, not a file"):
    class_weights.resolve(str(tmp_path), [0], NAMES)
  (tmp_path / "latin1.txt").write_bytes(b"caf\xe9:2\n")
  with pytest.raises(UsageError, match="cannot read --class_weight=.*latin1.txt"):
    class_weights.resolve(str(tmp_path / "latin1.txt"), [0], NAMES)


def test_describe_is_one_short_line():
  weights = class_weights.balanced([0] * 9 + [1], 2)
  assert class_weights.describe(weights, ["0", "1"], "balanced") == \
      "balanced: 0=0.56, 1=5 (n/(k*count))"
  assert class_weights.describe([1.0, 2.5], ["a", "b"], "w.txt") == "w.txt: a=1, b=2.5"
  assert class_weights.describe(None, ["a"]) == "none"
  many = class_weights.describe([1.0] * 12, [str(i) for i in range(12)])
  assert many.endswith("9=1, ... 2 more") and "\n" not in many


LOGITS = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0], [0.0, 0.0, 1.0]],
                  np.float32)
LABELS = np.array([0, 2, 0, 1])
WEIGHTS = [0.5, 2.0, 4.0]


def _cross_entropies():
  exp = np.exp(LOGITS - LOGITS.max(axis=1, keepdims=True))
  probs = exp / exp.sum(axis=1, keepdims=True)
  return -np.log(probs[np.arange(len(LABELS)), LABELS])


def _loss(mode, weights):
  """The head's loss (and its plain cross_entropy) for the toy batch in `mode`."""
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.train.get_or_create_global_step()
    logits = tf.compat.v1.get_variable("logits", initializer=LOGITS)  # something to train
    params = {"n_classes": 3, "optimizer": "sgd", "learning_rate": 0.1,
              "lr_decay_rate": 1.0, "lr_decay_steps": 1}
    if weights is not None:
      params["class_weights"] = weights
    spec = multi_class.build_spec(logits, tf.constant(LABELS), mode, params)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      return session.run([spec.loss, graph.get_tensor_by_name("cross_entropy:0")])


def test_train_loss_is_the_keras_weighted_mean():
  loss, plain = _loss(ModeKeys.TRAIN, WEIGHTS)
  ce = _cross_entropies()
  weights = np.take(WEIGHTS, LABELS)
  # Keras' class_weight: sum(w * ce) / batch size (not / sum(w)).
  assert loss == pytest.approx(np.sum(weights * ce) / len(ce), rel=1e-6)
  assert loss != pytest.approx(np.sum(weights * ce) / np.sum(weights), rel=1e-3)
  assert plain == pytest.approx(np.mean(ce), rel=1e-6)  # the progress line's "loss"
  assert _loss(ModeKeys.TRAIN, None)[0] == pytest.approx(np.mean(ce), rel=1e-6)


def test_eval_loss_ignores_the_weights():
  loss, plain = _loss(ModeKeys.EVAL, WEIGHTS)
  assert loss == pytest.approx(np.mean(_cross_entropies()), rel=1e-6) and loss == plain
  assert loss == pytest.approx(_loss(ModeKeys.EVAL, None)[0], rel=1e-7)


def test_wrong_number_of_weights_is_a_bug_said_while_building():
  with pytest.raises(ValueError, match="2 class weights for 3 classes"):
    _loss(ModeKeys.TRAIN, [1.0, 2.0])


def test_the_weighted_loss_is_summarised_beside_the_plain_one():
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.train.get_or_create_global_step()
    logits = tf.compat.v1.get_variable("logits", initializer=LOGITS)
    params = {"n_classes": 3, "optimizer": "sgd", "learning_rate": 0.1, "lr_decay_rate": 1.0,
              "lr_decay_steps": 1, "class_weights": WEIGHTS}
    multi_class.build_spec(logits, tf.constant(LABELS), ModeKeys.TRAIN, params)
    tags = {op.name for op in graph.get_operations() if op.type == "ScalarSummary"}
  assert {"losses/cross_entropy", "losses/weighted_cross_entropy"} <= tags


def _imbalanced(sample):
  """Digits 3, 5 and 8 as classes 0, 1, 2: 400 training images each of 3 and 5, 12 of 8."""
  def pick(x, y, counts):
    chosen = [np.flatnonzero(y == digit)[:n] for digit, n in counts]
    return x[np.concatenate(chosen)], np.concatenate(
        [np.full(len(c), cls, np.int32) for cls, c in enumerate(chosen)])
  x_train, y_train = pick(sample.x_train, sample.y_train, [(3, 400), (5, 400), (8, 12)])
  x_test, y_test = pick(sample.x_test, sample.y_test, [(3, 1000), (5, 1000), (8, 1000)])
  return dataclasses.replace(sample, name="imbalanced", n_classes=3, x_train=x_train,
                             y_train=y_train, x_test=x_test, y_test=y_test)


def test_balanced_weights_raise_the_rare_class_recall(sample, tmp_path, capsys):
  data = _imbalanced(sample)
  recalls = {}
  for value in (None, "balanced"):
    model_dir = tmp_path / str(value)
    spec = RunSpec.for_model("linear", model_dir=str(model_dir), steps=100, batch_size=50,
                             optimizer="sgd", learning_rate=0.1, eval_batch_size=500, seed=1,
                             precision="fp32", class_weight=value)
    runner.run(spec, data)
    with open(model_dir / "eval_report" / "eval_report.json") as f:
      recalls[value] = [row["recall"] for row in json.load(f)["per_class"]]
  # Unweighted, the 12 eights are all but drowned out; weighted 22 times as much, they count.
  assert recalls[None][2] < 0.2 and recalls["balanced"][2] > recalls[None][2] + 0.2, recalls
  assert "class weights: " in capsys.readouterr().out
