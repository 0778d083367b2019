"""The *servable* contract: what code after training (serving, retraining, forgetting, the DP
head) may ask of a fitted model, so none of it reads a model's tensors by key.

A servable model shows its users and items as per-source vector tables in one space
(:class:`VectorTables`: ``(n, S, d)`` float32 plus an availability mask per source) and a
:class:`VectorScorer` that turns those into one fused vector per row and scores pairs. The
fusion model has one slot per source it fuses; a plain embedding model (BPR-MF, LightGCN) has
a single ``interactions`` slot and a dot-product scorer (:class:`DotScorer`), so the service's
fold-in, cold start and explanations run unchanged over both.

What differs between models is declared, not probed: :class:`ServingCapabilities`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from fusionrec.errors import FusionRecError
from fusionrec.models.common.ranking import SeenItems


class ServableError(FusionRecError, ValueError):
    """A servable operation the model cannot do (e.g. a checkpoint of another model)."""


@dataclass(frozen=True)
class ServingCapabilities:
    """What a servable model can do beyond answering from its vectors.

    ``content_items``: a new item with no interactions gets a vector from its text or
    attributes (else it has none until a retrain, and the service says so with a 409);
    ``fold_in``: how a user's new events move their vector, in words; ``heads``: the model's
    scoring heads (``("ctr",)`` re-ranks candidates); ``private_head``: the DP head can
    re-train its scorer (:class:`PrivateHead`)."""

    content_items: bool
    fold_in: str
    heads: tuple[str, ...] = ("retrieval",)
    private_head: bool = False


@dataclass(frozen=True)
class VectorTables:
    """Users and items as per-source vectors: ``user (n_users, S, d)``, ``user_mask
    (n_users, S)`` (which sources a row has), the same for items; ``seen``: each user's
    training positives (what recommendations skip)."""

    sources: tuple[str, ...]
    user: np.ndarray
    user_mask: np.ndarray
    item: np.ndarray
    item_mask: np.ndarray
    seen: SeenItems


@dataclass(frozen=True)
class ContentRows:
    """What a model gives a new item from its content alone (the optional
    ``content_item_rows(text_vector, attribute_row)`` of a servable model): ``x (S, d)`` and
    ``mask (S,)`` as its tables hold an item without training interactions; ``open_sources``:
    sources it cannot give such an item a row for (the caller may fill them); ``bias``: the
    retrieval bias it gives such an item, or None when it has no rule for it."""

    x: np.ndarray
    mask: np.ndarray
    open_sources: tuple[str, ...] = ()
    bias: float | None = None


@dataclass(frozen=True)
class ForgetOutcome:
    """What :meth:`Servable.forget_user` did to the model: rows re-derived exactly, item rows
    masked because they held the user's words, and what still carries their influence (only
    a retrain removes it)."""

    recomputed: tuple[str, ...]
    needs_retrain: tuple[str, ...]
    masked_items: int = 0


@runtime_checkable
class VectorScorer(Protocol):
    """Fuses per-source rows and scores fused pairs (numpy in, numpy out)."""

    sources: tuple[str, ...]
    has_ctr: bool
    item_bias: np.ndarray | None

    def fuse(self, side: str, x: np.ndarray, mask: np.ndarray) -> np.ndarray: ...

    def weights(self, side: str, x: np.ndarray, mask: np.ndarray) -> np.ndarray: ...

    def pair_scores(self, user: np.ndarray, items: np.ndarray, bias: np.ndarray
                    ) -> np.ndarray: ...

    def row_scores(self, users: np.ndarray, items: np.ndarray, bias: np.ndarray
                   ) -> np.ndarray: ...


@runtime_checkable
class Servable(Protocol):
    """A fitted model that serving, retraining and forgetting can use.

    - ``vector_tables()`` / ``vector_scorer()``: the model's users and items and how it scores
      them; the service's exact top-K, fold-in and explanations are built on these.
    - ``text_encoder()``: the ``EncoderConfig`` whose vectors the model reads for item text
      (cold start of new texts, cache purges on forgetting), or ``None``.
    - ``forget_user(user, features_after, changed_items, had_friends)``: zero the user's rows
      in place, re-derive what can be re-derived exactly from ``features_after`` (the
      training features without them), and report what still carries their influence; the
      caller saves the model.
    - optional ``content_item_rows(text_vector, attribute_row)``: :class:`ContentRows` of a
      new item, as the model computes them for an item without training interactions (a
      posted item then scores as a ``cold-items`` item offline); absent or None: the service
      approximates them.
    - ``check_parent(weights)`` and ``warm_start(module, weights, parent_features, features,
      seen)``: continue training on grown vocabularies. ``weights`` is the parent's full
      module state from its Trainer checkpoint; rows of users and items the parent knew are
      copied by raw id, new rows keep the fresh initialisation ``build`` gave them.
    """

    name: str

    @property
    def serving(self) -> ServingCapabilities: ...

    def vector_tables(self) -> VectorTables: ...

    def vector_scorer(self) -> VectorScorer: ...

    def text_encoder(self) -> Any: ...

    def forget_user(self, user: int, features_after, changed_items: np.ndarray,
                    had_friends: bool) -> ForgetOutcome: ...

    def check_parent(self, weights: Mapping[str, Any]) -> None: ...

    def warm_start(self, module, weights: Mapping[str, Any], parent_features, features,
                   seen: SeenItems) -> dict[str, int]: ...

    def save(self, directory) -> Any: ...


#: What a class must define to be :class:`Servable` (checked without building a model).
SERVABLE_MEMBERS = ("name", "serving", "vector_tables", "vector_scorer", "text_encoder",
                    "forget_user", "check_parent", "warm_start", "save")


def servable_class(cls: type) -> bool:
    """Whether instances of ``cls`` are :class:`Servable`: the same members ``isinstance``
    looks for, read from the class (the CLI checks a run's model before loading it); as for
    ``isinstance``, a method set to ``None`` opts the class out."""
    return all(getattr(cls, member, None) is not None for member in SERVABLE_MEMBERS)


@runtime_checkable
class PrivateHead(Protocol):
    """A model whose scorer the DP head can re-train over frozen vector tables."""

    def head_inputs(self) -> Any:
        """The frozen ``tables``, a newly initialised ``scorer`` module that maps ``(tables,
        users, items, negatives)`` to head outputs, the users' ``seen`` items and
        ``n_items`` (fields of one frozen dataclass)."""
        ...

    def replace_head(self, scorer) -> None: ...


class DotScorer:
    """The scorer of a plain embedding model: one ``interactions`` slot, the fused vector is
    the row itself, ``score = u . i + bias_i`` (``bias`` folds in any global offset, so pair
    scores equal the model's own ``score``)."""

    sources = ("interactions",)
    has_ctr = False

    def __init__(self, item_bias: np.ndarray) -> None:
        self.item_bias = np.asarray(item_bias, np.float32)

    def fuse(self, side: str, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``x (B, 1, d)``, ``mask (B, 1)`` -> ``(B, d)``; a row without vector is zero."""
        return (np.asarray(x, np.float32)[:, 0] * np.asarray(mask, bool)[:, :1]).astype(
            np.float32)

    def weights(self, side: str, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(mask, bool).astype(np.float32)  # (B, 1): the one source is all

    def pair_scores(self, user: np.ndarray, items: np.ndarray, bias: np.ndarray) -> np.ndarray:
        return items @ user + bias

    def row_scores(self, users: np.ndarray, items: np.ndarray, bias: np.ndarray) -> np.ndarray:
        return (users * items).sum(1) + bias


def single_source_tables(users: np.ndarray, items: np.ndarray, seen: SeenItems
                         ) -> VectorTables:
    """:class:`VectorTables` of a plain embedding model (``users (n_u, d)``, ``items
    (n_i, d)``): one ``interactions`` slot that every row has."""
    users = np.asarray(users, np.float32)[:, None, :]
    items = np.asarray(items, np.float32)[:, None, :]
    return VectorTables(("interactions",), users, np.ones(users.shape[:2], bool), items,
                        np.ones(items.shape[:2], bool), seen)


def copy_rows(target, old, new_keys: tuple[str, ...], old_keys: tuple[str, ...]
              ) -> tuple[Any, int, int]:
    """``target`` (a fresh tensor) with the rows of ``old`` whose key is in both key lists;
    returns ``(tensor, copied, fresh)``."""
    import torch

    index = {key: row for row, key in enumerate(old_keys)}
    if len(new_keys) != target.shape[0] or len(index) != old.shape[0]:
        raise ServableError(f"{target.shape[0]} rows but {len(new_keys)} keys; the row layout "
                            "of this table changed")
    pairs = [(row, index[key]) for row, key in enumerate(new_keys) if key in index]
    out = target.clone()
    if pairs:
        new_rows, old_rows = (torch.as_tensor(p, dtype=torch.long) for p in zip(*pairs))
        out[new_rows] = old[old_rows].to(target.dtype)
    return out, len(pairs), len(new_keys) - len(pairs)


def warm_state(module, weights: Mapping[str, Any], row_keys: Mapping[str, Any],
               parent_features, features) -> dict[str, int]:
    """Load ``weights`` (the parent module's state) into ``module`` (built on ``features``):
    tensors named in ``row_keys`` (name -> ``features -> keys of its rows``) are copied row by
    row through those keys, every other tensor must keep its shape and is copied whole."""
    state = module.state_dict()
    counts = {"copied_rows": 0, "fresh_rows": 0, "copied_tensors": 0}
    for name, target in state.items():
        old = weights.get(name)
        if old is None:
            raise ServableError(f"the parent run has no tensor {name!r}; was it trained with "
                                "other model parameters or sources?")
        keys = row_keys.get(name)
        if keys is None:
            if old.shape != target.shape:
                raise ServableError(f"{name}: shape {tuple(old.shape)} in the parent, "
                                    f"{tuple(target.shape)} now, and no row mapping for it")
            state[name] = old.to(target.dtype).clone()
            counts["copied_tensors"] += 1
            continue
        try:
            state[name], copied, fresh = copy_rows(target, old, keys(features),
                                                   keys(parent_features))
        except ServableError as error:
            raise ServableError(f"{name}: {error}") from None
        counts["copied_rows"] += copied
        counts["fresh_rows"] += fresh
    module.load_state_dict(state)
    return counts


def user_keys(features) -> tuple[str, ...]:
    return tuple(f"user\x1f{u}" for u in features.users.ids)


def item_keys(features) -> tuple[str, ...]:
    return tuple(f"item\x1f{i}" for i in features.items.ids)
