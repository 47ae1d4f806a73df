"""The bottom layer: errors, precision, the run log, locks, error causes, command-line basics."""
