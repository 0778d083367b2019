"""Continual learning: retrain a served run on new events (grow vocabularies, warm start,
replay, promotion gate)."""
