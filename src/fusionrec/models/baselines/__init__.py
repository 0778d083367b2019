"""models/baselines."""
