"""One run: its RunSpec, its plan, the checks before it, the modes, what it prints and keeps."""
