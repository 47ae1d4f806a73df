"""Data sets: the Dataset type, file readers, and the registry of built-in data sets."""
