"""User→user link models ("people you may know") for link splits (task ``links``, e.g. the
``links-random`` protocol): ``recommend(users, k)`` returns *user* indices, never the user
themself nor their training friends."""
