"""FAISS indexes over the fused item vectors, built once when a model loads.

Retrieval scores are ``u . i + b_i`` (the retrieval head), which is an inner product once the
item vector is extended by its bias and the user vector by a 1: ``[u, 1] . [i, b_i]``.

- ``flat``: exact ``IndexFlatIP``; the model's own top candidates. Cost grows with
  ``n_items * D`` per request (about 2 ms for Last.FM's 17,632 items x 257 on one busy core).
- ``hnsw``: an HNSW graph for the candidates (well under a millisecond), whose hits are then
  re-scored exactly. Inner product is turned into Euclidean distance first (each item gets one
  more coordinate ``sqrt(M^2 - |x|^2)``, the query a 0, so every item has norm ``M`` and the
  nearest item is the one of largest inner product), as HNSW is built for metric spaces.
- ``auto``: flat up to :data:`HNSW_FROM` items, HNSW above.

A second index over unit-length item vectors answers "similar items". Items created after
loading are few and are scored outside FAISS (brute force, in the engine), so the indexes are
never written to while requests read them.
"""

from __future__ import annotations

import numpy as np

HNSW_FROM = 5000  # items; below this an exact scan is about as fast as a graph search
INDEX_KINDS = ("auto", "flat", "hnsw")


def _faiss(threads: int):
    import faiss

    # One request is one query: OpenMP threads only add hand-off latency under load.
    faiss.omp_set_num_threads(threads)
    return faiss


def augment_items(vectors: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return np.hstack([vectors, bias[:, None]]).astype(np.float32)


def augment_users(vectors: np.ndarray) -> np.ndarray:
    vectors = np.atleast_2d(vectors)
    return np.hstack([vectors, np.ones((len(vectors), 1), vectors.dtype)]).astype(np.float32)


def unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class ItemIndex:
    """Maximum-inner-product and cosine search over ``vectors (n, D)`` with biases."""

    def __init__(self, vectors: np.ndarray, bias: np.ndarray, threads: int = 1,
                 kind: str = "auto", hnsw_m: int = 32) -> None:
        if kind not in INDEX_KINDS:
            raise ValueError(f"index kind must be one of {INDEX_KINDS}, got {kind!r}")
        faiss = _faiss(threads)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.n, self.dim = vectors.shape
        self.kind = kind if kind != "auto" else ("hnsw" if self.n >= HNSW_FROM else "flat")
        self.items = augment_items(vectors, bias)  # (n, D + 1)
        self.units = unit(vectors)
        if self.kind == "flat":
            self.mips = faiss.IndexFlatIP(self.dim + 1)
            self.mips.add(self.items)
            self.cosine = faiss.IndexFlatIP(self.dim)
            self.cosine.add(self.units)
            return
        norms = np.linalg.norm(self.items, axis=1)
        lift = np.sqrt(np.maximum(norms.max() ** 2 - norms ** 2, 0.0))[:, None]
        self.mips = faiss.IndexHNSWFlat(self.dim + 2, hnsw_m)
        self.mips.hnsw.efConstruction = 80
        self.mips.add(np.hstack([self.items, lift]).astype(np.float32))
        self.cosine = faiss.IndexHNSWFlat(self.dim, hnsw_m)  # L2 on unit vectors ~ cosine
        self.cosine.hnsw.efConstruction = 80
        self.cosine.add(self.units)
        self._faiss = faiss

    def _search(self, index, query: np.ndarray, n: int) -> np.ndarray:
        if self.kind == "flat":
            _, ids = index.search(query.reshape(1, -1), n)
        else:  # a wider beam than the hits wanted keeps recall high
            params = self._faiss.SearchParametersHNSW(efSearch=max(n + n // 2, 64))
            _, ids = index.search(query.reshape(1, -1), n, params=params)
        ids = ids[0]
        return ids[ids >= 0].astype(np.int64)

    def top(self, user_augmented: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best items for one ``[u, 1]`` query: ``(ids, exact scores)``, best first."""
        n = min(n, self.n)
        query = user_augmented if self.kind == "flat" else np.append(user_augmented, 0.0)
        ids = self._search(self.mips, query.astype(np.float32), n)
        scores = self.items[ids] @ user_augmented
        order = np.argsort(-scores, kind="stable")
        return ids[order], scores[order]

    def similar(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items of highest cosine similarity to ``vector``."""
        n = min(n, self.n)
        query = unit(vector.reshape(1, -1))[0]
        ids = self._search(self.cosine, query, n)
        sims = self.units[ids] @ query
        order = np.argsort(-sims, kind="stable")
        return ids[order], sims[order]
