"""The plan of a run: the validated config and sample sheet as typed records."""
