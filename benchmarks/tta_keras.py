"""The fast recipes written plainly in Keras: fit, oneDNN on, mixed_bfloat16 where asked."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import tta_recipe  # pylint: disable=g-import-not-at-top,wrong-import-position


def training_data(tf, args, x_train, y_train):
  """fit's input: the arrays as they are, or a tf.data pipeline that augments them.

  Keras' own layers, mapped over batches as its guide advises for a CPU (the map runs beside
  the step): RandomRotation and RandomTranslation, bilinear, zeros coming in. They are
  float32 under any policy: the image ops they call take no bf16 (mixed_bfloat16 would
  hand them bf16), and the model casts its input itself.
  """
  if not (args.shift or args.rotate):
    return {"x": x_train, "y": y_train, "batch_size": args.batch_size, "shuffle": True}
  layers = tf.keras.layers
  augment = tf.keras.Sequential(
      ([layers.RandomRotation(args.rotate / 360, fill_mode="constant", dtype="float32")]
       if args.rotate else [])
      + ([layers.RandomTranslation(args.shift, args.shift, fill_mode="constant",
                                   dtype="float32")] if args.shift else []))
  ds = (tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train))
        .batch(args.batch_size)
        .map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE))
  return {"x": ds}


def averaging(tf, decay):
  """A Sequential whose train_step also keeps a moving average of its trainable weights.

  As Keras' guide to customizing fit: super().train_step, then the update
  (tta_recipe.moving_average_decay's decay). swap() puts the average in for evaluation.
  """
  class Averaged(tf.keras.Sequential):  # pylint: disable=missing-class-docstring
    def train_step(self, data):
      logs = super().train_step(data)
      n = tf.cast(self.optimizer.iterations, tf.float32)
      d = tf.minimum(decay, (1.0 + n) / (10.0 + n))
      for average, weight in zip(self.averages, self.trainable_weights):
        average.assign(d * average + (1.0 - d) * tf.cast(weight, average.dtype))
      return logs

    def start_averages(self):
      self.averages = [tf.Variable(w, trainable=False) for w in self.trainable_weights]

    def swap(self):
      for average, weight in zip(self.averages, self.trainable_weights):
        kept = weight.numpy()
        weight.assign(average)
        average.assign(kept)
  return Averaged


def build(tf, args):
  """The network (fast_cnn's shape), compiled with Adam on the one-cycle schedule."""
  total = -(-args.train_size // args.batch_size) * args.epochs

  class OneCycle(tf.keras.optimizers.schedules.LearningRateSchedule):
    def __call__(self, step):
      t = tf.cast(step, tf.float32) / total
      peak, warm = args.learning_rate, args.warmup
      return tf.where(t < warm, peak * (0.1 + 0.9 * t / warm),
                      peak * tf.maximum(0.0, (1.0 - t) / (1.0 - warm)))

  layers = tf.keras.layers
  first, second = (int(f) for f in args.filters.split(","))
  kind = (averaging(tf, args.moving_average_decay) if args.moving_average_decay
          else tf.keras.Sequential)
  model = kind([
      tf.keras.Input((28, 28, 1)),
      layers.Conv2D(first, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
      layers.Conv2D(second, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
      layers.Flatten(), layers.Dense(args.hidden, activation="relu"),
      layers.Dropout(args.dropout), layers.Dense(10),
      layers.Activation("linear", dtype="float32")])
  model.compile(tf.keras.optimizers.Adam(OneCycle(), args.beta1, args.beta2, args.epsilon),
                tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  if args.moving_average_decay:
    model.start_averages()
  return model


def main():
  args = tta_recipe.parser(__doc__).parse_args()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if args.threads:
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
  if args.bf16:
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
  tf.keras.utils.set_random_seed(args.seed)
  x_train, y_train, x_test, y_test = tta_recipe.load(args.data)
  args.train_size = len(x_train)
  model = build(tf, args)
  data = training_data(tf, args, x_train, y_train)

  def evaluate():
    if args.moving_average_decay:
      model.swap()  # the average in, for evaluation; then back, to train on
    _, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    if args.moving_average_decay:
      model.swap()
    return np.float64(accuracy)

  clock = tta_recipe.Clock(args.target)
  for epoch in range(1, args.epochs + 1):
    clock.timed("train", lambda: model.fit(**data, epochs=1, verbose=0))
    if clock.reached(epoch, clock.timed("evaluate", evaluate)):
      break
  clock.report()


if __name__ == "__main__":
  main()
