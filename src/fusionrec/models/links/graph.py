"""The training friendship graph every link model reads, and what ``recommend`` must skip.

Built from ``split.features.social`` only: on a link split that table holds the training
friendships and nothing else (see :mod:`fusionrec.data.protocols.links_random`).
"""

from __future__ import annotations

import numpy as np

from fusionrec.data.split import Pairs, Split
from fusionrec.models.common.ranking import SeenItems


def require_links(split: Split, model: str) -> None:
    """Fail fast when a link model is given an item split."""
    if split.task != "links":
        raise ValueError(f"{model} ranks users for user→user link splits (task 'links', e.g. "
                         f"protocol links-random); got a {split.task!r} split "
                         f"({split.protocol})")
    if split.features.social is None:
        raise ValueError(f"{model} needs a social source; {split.features.name!r} has none")


def friend_matrix(features):
    """``(n_users, n_users)`` symmetric 0/1 scipy CSR adjacency of ``features.social`` (no self
    loops)."""
    from scipy import sparse

    n = features.n_users
    social = features.social
    # mirrored whatever the table says: a directed trust edge still means the two may know
    # each other (duplicates collapse below)
    source = np.concatenate([social.source, social.target])
    target = np.concatenate([social.target, social.source])
    keep = source != target
    matrix = sparse.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32),
                                (source[keep], target[keep])), shape=(n, n))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def link_seen(adjacency) -> SeenItems:
    """Per user: themself and their training friends (what a people list never shows)."""
    n = adjacency.shape[0]
    coo = adjacency.tocoo()
    users = np.concatenate([coo.row, np.arange(n)]).astype(np.int64)
    others = np.concatenate([coo.col, np.arange(n)]).astype(np.int64)
    return SeenItems.from_pairs(Pairs(users, others, np.ones(len(users), np.float32)), n)


def csr_arrays(adjacency) -> dict[str, np.ndarray]:
    return {"adj_indptr": adjacency.indptr.astype(np.int64),
            "adj_indices": adjacency.indices.astype(np.int64)}


def csr_from_arrays(tensors, n_users: int):
    from scipy import sparse

    indices = tensors["adj_indices"]
    return sparse.csr_matrix((np.ones(len(indices), dtype=np.float32), indices,
                              tensors["adj_indptr"]), shape=(n_users, n_users))
