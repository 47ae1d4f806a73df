"""`python -m mnist_estimator.predict`."""

from mnist_estimator.predict import main

if __name__ == "__main__":
  main.run()
