"""`python -m mnist_estimator.cluster`: main's training as a TF_CONFIG cluster, local or on Ray."""
