"""Privacy tools: keyed pseudonymisation of user ids at ingest, forgetting a user (run folder,
event store, embedding cache), and differentially private training of the fusion head."""
