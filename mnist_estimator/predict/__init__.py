"""`python -m mnist_estimator.predict`: a SavedModel's predictions for image and data files."""
