"""mnist_estimator: the classic TensorFlow MNIST texts as one tf.estimator framework."""

__version__ = "0.1.0"
