"""`python -m mnist_estimator.serve`: see mnist_estimator/serve/main.py."""

from absl import app
from absl import flags

from mnist_estimator.serve import main

if __name__ == "__main__":
  main.define_flags()
  flags.adopt_module_key_flags(main)  # --helpshort lists the server's flags
  app.run(main.main)
