"""mnist_estimator: the classic TensorFlow MNIST texts as one tf.estimator framework."""

from mnist_estimator.common import precision as _precision

__version__ = "0.1.0"

# Before anything imports TensorFlow: oneDNN's kernels on every CPU (see enable_onednn).
_precision.enable_onednn()
