"""The fast recipe written plainly in Keras: fit, oneDNN on, mixed_bfloat16 where asked."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import tta_recipe  # pylint: disable=g-import-not-at-top,wrong-import-position


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
  steps_per_epoch = -(-len(x_train) // args.batch_size)
  total = steps_per_epoch * args.epochs

  class OneCycle(tf.keras.optimizers.schedules.LearningRateSchedule):
    def __call__(self, step):
      t = tf.cast(step, tf.float32) / total
      peak, warm = args.learning_rate, args.warmup
      return tf.where(t < warm, peak * (0.1 + 0.9 * t / warm),
                      peak * tf.maximum(0.0, (1.0 - t) / (1.0 - warm)))

  layers = tf.keras.layers
  first, second = (int(f) for f in args.filters.split(","))
  model = tf.keras.Sequential([
      tf.keras.Input((28, 28, 1)),
      layers.Conv2D(first, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
      layers.Conv2D(second, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
      layers.Flatten(), layers.Dense(args.hidden, activation="relu"), layers.Dense(10),
      layers.Activation("linear", dtype="float32")])
  model.compile(tf.keras.optimizers.Adam(OneCycle(), args.beta1, args.beta2, args.epsilon),
                tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  clock = tta_recipe.Clock(args.target)
  for epoch in range(1, args.epochs + 1):
    clock.timed("train", lambda: model.fit(x_train, y_train, batch_size=args.batch_size,
                                           epochs=1, shuffle=True, verbose=0))
    _, accuracy = clock.timed("evaluate", lambda: model.evaluate(
        x_test, y_test, batch_size=1000, verbose=0))
    if clock.reached(epoch, np.float64(accuracy)):
      break
  clock.report()


if __name__ == "__main__":
  main()
