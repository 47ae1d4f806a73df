"""Variable names are sorted into layer weights, optimizer slots and bookkeeping."""

import pytest

from mnist_estimator.estimator import weights


@pytest.mark.parametrize("name, kind", [
    ("conv1/kernel", "layer"),
    ("conv_layer/Conv/kernel", "layer"),
    ("logits/bias", "layer"),
    ("conv1/kernel/Adam", "optimizer"),
    ("conv1/kernel/Adam_1", "optimizer"),
    ("dense/bias/Momentum", "optimizer"),
    ("logits/kernel/Adagrad", "optimizer"),
    ("logits/kernel/RMSProp_1", "optimizer"),
    ("logits/kernel/Ftrl_1", "optimizer"),
    ("beta1_power", "optimizer"),
    ("beta2_power", "optimizer"),
    ("hidden/kernel/ExponentialMovingAverage", "average"),
    ("global_step", "bookkeeping"),
])
def test_kind_of(name, kind):
  assert weights.kind_of(name) == kind


def test_format_table_groups_by_kind():
  rows = [("beta1_power", (), "optimizer"), ("global_step", (), "bookkeeping"),
          ("logits/kernel", (784, 10), "layer"), ("logits/bias", (10,), "layer")]
  text = weights.format_table(rows)
  assert text.index("layer weights (2, 7,850 values)") < text.index("optimizer slots")
  assert text.index("optimizer slots") < text.index("bookkeeping")
  assert "logits/kernel  [784, 10]" in text
