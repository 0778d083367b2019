"""Attribute tables and tags turned into sparse "feature bags" (numpy/scipy, no torch).

A bag is a ``(n_rows, n_features)`` matrix whose row ``r`` says how much each feature (one
categorical value, one value of a multi-valued column, one tag) describes row ``r``. Each column
(and the tag set) carries total weight 1 for a row that has it, split evenly over a multi-valued
column's values and by ``log(1 + count) * idf`` over tags, and the row is then averaged over the
columns it has: ``bag @ E`` is then a mean of feature embeddings. Numeric columns are kept apart
as a standardised dense block (NaN -> 0, plus a 0/1 "missing" column where any value is NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fusionrec.data.schema import Attributes, Tags


@dataclass(frozen=True)
class FeatureBags:
    """Bags over one feature vocabulary for the rows of one side (users or items)."""

    bag: sp.csr_matrix  # (n_rows, n_features), rows sum to 1 or 0
    numeric: np.ndarray  # (n_rows, n_numeric) float32, standardised
    features: tuple[str, ...]  # names, e.g. "genre=rock", "tag:indie"

    @property
    def has_rows(self) -> np.ndarray:
        """Rows with at least one feature or numeric value, ``(n_rows,)`` bool."""
        return (self.bag.getnnz(axis=1) > 0) | (np.abs(self.numeric).sum(axis=1) > 0)


def _is_numeric(column: np.ndarray) -> bool:
    return column.dtype.kind in "fiub"


def _numeric_block(columns: dict[str, np.ndarray], n_rows: int) -> np.ndarray:
    blocks = []
    for values in columns.values():
        x = np.asarray(values, dtype=np.float64)
        missing = np.isnan(x)
        if missing.all():
            continue
        mean, std = x[~missing].mean(), x[~missing].std()
        blocks.append(np.where(missing, 0.0, (x - mean) / (std if std > 0 else 1.0)))
        if missing.any():
            blocks.append(missing.astype(np.float64))
    if not blocks:
        return np.zeros((n_rows, 0), dtype=np.float32)
    return np.column_stack(blocks).astype(np.float32)


def _categorical_rows(columns: dict[str, np.ndarray]):
    """(row, feature name, weight) triples; each present column sums to weight 1 on its row."""
    rows, names, weights = [], [], []
    for column, values in columns.items():
        for r, value in enumerate(values):
            parts = [p.strip() for p in str(value).split("|") if p.strip()] if value else []
            for part in parts:
                rows.append(r)
                names.append(f"{column}={part}")
                weights.append(1.0 / len(parts))
    return rows, names, weights


def tag_matrix(tags: Tags, n_items: int, idf: bool = True) -> sp.csr_matrix:
    """``(n_items, n_tags)`` weights ``log(1 + count) * idf``, each non-empty row summing to 1."""
    n_tags = len(tags.vocabulary)
    counts = sp.csr_matrix((np.ones(len(tags)), (tags.item, tags.tag)), shape=(n_items, n_tags))
    counts.sum_duplicates()
    counts.data = np.log1p(counts.data)
    if idf:
        doc_freq = np.bincount(counts.indices, minlength=n_tags)
        counts = counts @ sp.diags(np.log((1.0 + n_items) / (1.0 + doc_freq)) + 1.0)
    return _row_normalise(sp.csr_matrix(counts))


def user_tag_matrix(tags: Tags, n_users: int) -> sp.csr_matrix:
    """``(n_users, n_tags)``: the tags each user assigned (rows with a known user only)."""
    known = tags.user is not None
    user = tags.user if known else np.zeros(0, dtype=np.int64)
    keep = user >= 0
    matrix = sp.csr_matrix((np.ones(int(keep.sum())), (user[keep], tags.tag[keep])),
                           shape=(n_users, len(tags.vocabulary)))
    matrix.sum_duplicates()
    matrix.data = np.log1p(matrix.data)
    return _row_normalise(matrix)


def _row_normalise(matrix: sp.spmatrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale) @ matrix)


def feature_bags(attributes: Attributes | None, tags: Tags | None, n_rows: int) -> FeatureBags:
    """Bags of the categorical/multi columns of ``attributes`` plus (item side) ``tags``."""
    columns = dict(attributes.columns) if attributes is not None else {}
    numeric = {k: v for k, v in columns.items() if _is_numeric(np.asarray(v))}
    categorical = {k: v for k, v in columns.items() if k not in numeric}
    rows, names, weights = _categorical_rows(categorical)
    vocab = {name: j for j, name in enumerate(dict.fromkeys(names))}
    blocks = [sp.csr_matrix((weights, (rows, [vocab[n] for n in names])),
                            shape=(n_rows, len(vocab)))]
    features = list(vocab)
    if tags is not None and len(tags):
        blocks.append(tag_matrix(tags, n_rows))
        features += [f"tag:{t}" for t in tags.vocabulary.ids]
    bag = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((n_rows, 0))
    # Average over the columns a row has (each contributes weight 1 so far).
    return FeatureBags(_row_normalise(bag), _numeric_block(numeric, n_rows), tuple(features))


def drop_rare_features(bags: FeatureBags, counted: np.ndarray, min_rows: int) -> FeatureBags:
    """``bags`` without the features that fewer than ``min_rows`` of the ``counted`` rows
    ``(n_rows,)`` bool (those with a training interaction) carry: their columns are zeroed and
    every row re-averaged over what it keeps (the feature list stays, so names still line up).
    A value seen on no such row never trains (its embedding is noise on a new row), and one
    seen on a single row is that row's ID in disguise (ML-100K zip codes)."""
    seen = bags.bag[np.asarray(counted, dtype=bool)]
    support = np.bincount(seen.indices, minlength=bags.bag.shape[1])
    keep = sp.diags((support >= min_rows).astype(np.float64))
    return FeatureBags(_row_normalise(bags.bag @ keep), bags.numeric, bags.features)


def own_tag_bag(tags: Tags, n_users: int, bags: FeatureBags) -> sp.csr_matrix:
    """``(n_users, n_features)``: the tags each user assigned, laid out in ``bags``' feature
    space (tags come last), each non-empty row summing to 1."""
    tag_part = user_tag_matrix(tags, n_users)
    lead = bags.bag.shape[1] - tag_part.shape[1]
    return sp.hstack([sp.csr_matrix((n_users, lead)), tag_part], format="csr")
