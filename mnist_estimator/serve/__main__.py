"""`python -m mnist_estimator.serve`: see mnist_estimator/serve/main.py."""

from mnist_estimator.serve import main

main.run()
