"""Launches a TF_CONFIG cluster: `cluster [--engine=ray] --workers=2 --ps=1 --evaluator -- ...`."""

from absl import app
from absl import flags

from mnist_estimator.cluster import main

if __name__ == "__main__":
  main.define_flags()
  flags.adopt_module_key_flags(main)  # --helpshort lists the launcher's flags
  app.run(main.main)
