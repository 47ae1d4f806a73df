"""What a run draws and writes for people: the evaluation report and weight pictures."""
