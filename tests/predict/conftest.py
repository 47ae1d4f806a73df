"""The predict tests' model: one linear model trained on the bundled sample and exported."""

import pytest

from mnist_estimator.run import runner
from mnist_estimator.run.spec import RunSpec


@pytest.fixture(scope="session")
def trained(tmp_path_factory, sample):
  """linear, 30 steps on the bundled sample (all 1000 test images), exported: (spec, result).

  Built once per worker for every predict module; they only read its export. No eval report:
  nothing here reads it (test_runner and test_api check the report).
  """
  tmp = tmp_path_factory.mktemp("predict")
  spec = RunSpec.for_model("linear", model_dir=str(tmp / "m"), steps=30, batch_size=50,
                           optimizer="sgd", learning_rate=0.5, eval_batch_size=500,
                           dataset="mnist_sample", export_dir=str(tmp / "export"), seed=1,
                           report=False)
  return spec, runner.run(spec, sample)
