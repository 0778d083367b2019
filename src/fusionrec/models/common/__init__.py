"""Infrastructure every model family shares: persistence, ranking, negative sampling, histories."""
