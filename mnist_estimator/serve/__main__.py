"""`python -m mnist_estimator.serve`: see mnist_estimator/serve/main.py."""

from mnist_estimator.serve import main

if __name__ == "__main__":
  main.run()
