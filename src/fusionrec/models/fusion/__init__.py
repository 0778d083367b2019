"""models/fusion."""
