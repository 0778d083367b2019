"""Applying writes to a live :class:`~fusionrec.serving.engine.Engine` (validation, fold-in,
cold start). Callers serialise writes; readers see each user's new view or item table the
moment its reference is replaced.

Cold start for a user the model never saw: start from *proxies* (the mean state of their
friends; without friends, of the training users sharing most of their attribute values; else
the average user), set the user-attribute vector from their own attributes, fold in the items
closest in LM space to their text (a pseudo-history, not excluded from recommendations), then
fold in their own events.

A new item is textualised as the catalogue's items are (``posted_item_text``) and, when the
model gives the rule (``content_item_rows``, the fusion model does), gets exactly the rows the
model gives an item without training interactions: its text and attribute rows through the
model's own content encoders, its interactions row masked when the model masks cold IDs. It
then scores as the same item scores offline under ``cold-items``. Sources the model leaves open
(an unmasked interactions row) and the bias then are borrowed from the items its text is
closest to. Without the rule, the attribute and text rows come from maps re-fitted to the
stored rows (ridge), and the collaborative rows and bias are borrowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from fusionrec.serving.coldstart import AttributeEmbedder, TextMatcher
from fusionrec.serving.index import augment_users
from fusionrec.data.events import ItemRecord, UserRecord, WriteBatch, is_positive
from fusionrec.serving.vectors import UserState
from fusionrec.serving.views import ItemTable, RequestError, UserView
from fusionrec.text.scrub import scrub_pii

TEXT_NEIGHBOURS = 10   # pseudo-history items for a text-only user / borrowed for a new item
ATTRIBUTE_PROXIES = 20
_BORROWED = ("interactions", "social", "user_attributes")  # item sources a new item borrows


@dataclass
class _Overlay:
    """Writer-side record of everything posted for one user since load."""

    added: list[int] = field(default_factory=list)   # positives, in arrival order
    negatives: set[int] = field(default_factory=set)
    record: UserRecord | None = None
    pseudo: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class Updater:
    def __init__(self, engine, text_cold_start: bool = True) -> None:
        self.engine = engine
        features = engine.run.features
        sources = engine.sources
        self.slot = {name: s for s, name in enumerate(sources)}
        n_users, n_items = len(engine.user_x), len(engine.item_x)
        self.base_friends = _friend_matrix(features.social, n_users)
        self.extra_friends: dict[int, set[int]] = {}
        self.overlays: dict[int, _Overlay] = {}
        ua = features.user_attributes
        self.user_attrs = None
        if ua is not None and ua.columns:
            s = self.slot.get("user_attributes")
            self.user_attrs = AttributeEmbedder(
                ua, None, n_users, None if s is None else engine.user_x[:, s],
                None if s is None else engine.user_mask[:, s])
        self.user_categorical = {name: np.asarray(col).astype(str) for name, col in
                                 (ua.columns.items() if ua is not None else ())
                                 if np.asarray(col).dtype.kind not in "fiub"}
        ia = features.item_attributes
        self.item_attrs = None
        if ia is not None and ((ia.attributes is not None and ia.attributes.columns)
                               or (ia.tags is not None and len(ia.tags))):
            s = self.slot.get("item_attributes")
            tags = ia.tags if ia.tags is not None and len(ia.tags) else None
            self.item_attrs = AttributeEmbedder(
                ia.attributes, tags, n_items, None if s is None else engine.item_x[:, s],
                None if s is None else engine.item_mask[:, s])
        self.matcher = None
        if text_cold_start and "item_text" in self.slot:
            self.matcher = _text_matcher(engine, features, self.slot["item_text"])
        self.mean_bias = float(engine.item_bias.mean()) if len(engine.item_bias) else 0.0
        self.average_user = UserState(engine.user_x.mean(0), engine.user_mask.mean(0) >= 0.5,
                                      engine.user_profile.mean(0), 0)

    # -- validation -------------------------------------------------------------------------
    def validate(self, batch: WriteBatch, max_text_chars: int) -> None:
        """Raise :class:`RequestError` (422) for anything in ``batch`` the engine cannot use."""
        users, items = self.engine.users, self.engine.items
        batch_users = {u.user_id for u in batch.users}
        batch_items = {i.item_id for i in batch.items}
        for j, user in enumerate(batch.users):
            where = f"users[{j}] ({user.user_id!r})"
            check_text(where, user.text, max_text_chars)
            if user.attributes:
                problem = (self.user_attrs.check(user.attributes) if self.user_attrs
                           else "this dataset has no user attributes")
                if problem:
                    raise RequestError(422, f"{where}: {problem}")
            for friend in user.friends:
                if friend == user.user_id:
                    raise RequestError(422, f"{where}: a user cannot befriend themselves")
                if friend not in users and friend not in batch_users:
                    raise RequestError(404, f"{where}: unknown friend {friend!r}")
        for j, item in enumerate(batch.items):
            where = f"items[{j}] ({item.item_id!r})"
            check_text(where, item.text, max_text_chars)
            if item.attributes or item.tags:
                problem = (self.item_attrs.check(item.attributes) if self.item_attrs
                           else "this dataset has no item attributes or tags")
                if problem:
                    raise RequestError(422, f"{where}: {problem}")
            if item.item_id in items and not items.is_new(items.get(item.item_id)):
                raise RequestError(422, f"{where}: item {item.item_id!r} is part of the "
                                   "trained model and cannot be redefined")
        low, high = self.engine.rating_scale
        for j, event in enumerate(batch.events):
            # Unknown ids are 404 here as in paths and in /v1/score (the same condition).
            if event.user_id not in users and event.user_id not in batch_users:
                raise RequestError(404, f"events[{j}]: unknown user {event.user_id!r} (a new "
                                   "user must be listed under `users` first)")
            if event.item_id not in items and event.item_id not in batch_items:
                raise RequestError(404, f"events[{j}]: unknown item {event.item_id!r} (a new "
                                   "item must be listed under `items` first)")
            if event.kind == "rating" and not low <= (event.value or 0.0) <= high:
                raise RequestError(422, f"events[{j}]: rating {event.value} is outside this "
                                   f"run's rating scale {low:g}..{high:g}")

    # -- applying ---------------------------------------------------------------------------
    def apply(self, batch: WriteBatch) -> None:
        """Apply an already-persisted batch (also used to replay the store at load)."""
        engine = self.engine
        for item in batch.items:
            self._apply_item(item)
        touched: set[int] = set()
        for record in batch.users:
            user = engine.users.get(record.user_id)
            if user is None:
                user = len(engine.users)  # its view is published before its id (see below)
            overlay = self.overlays.setdefault(user, _Overlay())
            overlay.record = record
            overlay.pseudo = self._pseudo_history(record)
            friends = {engine.users.get(f) for f in record.friends} - {None}
            self.extra_friends.setdefault(user, set()).update(friends)
            for friend in friends:  # friendship goes both ways
                self.extra_friends.setdefault(friend, set()).add(user)
            self._publish(user)
            engine.users.add(record.user_id)
        for event in batch.events:
            user, item = engine.users.get(event.user_id), engine.items.get(event.item_id)
            if user is None or item is None:  # replaying events of ids a newer model lost
                continue
            overlay = self.overlays.setdefault(user, _Overlay())
            if is_positive(event.kind, event.value):
                overlay.added.append(item)
                overlay.negatives.discard(item)
            elif event.kind in ("dislike", "rating"):
                overlay.negatives.add(item)
            touched.add(user)
        for user in touched:
            self._publish(user)

    def friends_of(self, user: int) -> np.ndarray:
        base = (self.base_friends.indices[self.base_friends.indptr[user]:
                                          self.base_friends.indptr[user + 1]]
                if user < self.base_friends.shape[0] else np.zeros(0, np.int64))
        extra = self.extra_friends.get(user)
        if extra:
            return np.union1d(base, np.fromiter(extra, np.int64))
        return base

    def _publish(self, user: int) -> None:
        engine = self.engine
        overlay = self.overlays[user]
        state = self._base_state(user, overlay)
        base_history = (engine.seen.items_of(user) if user < len(engine.user_x)
                        else np.zeros(0, np.int64))
        added = np.array([i for i in dict.fromkeys(overlay.added)
                          if not np.isin(i, base_history)], dtype=np.int64)
        if len(added):
            x, mask, _, _ = engine.item_rows(added)
            state = engine.foldin.update(state, x, mask)
        fused = engine.space.fuse("user", state.x[None], state.mask[None])[0]
        history = np.union1d(base_history, added)
        excluded = np.union1d(history, np.fromiter(overlay.negatives, np.int64))
        engine.views[user] = UserView(state, fused, augment_users(fused)[0], history, excluded)

    def _base_state(self, user: int, overlay: _Overlay) -> UserState:
        engine = self.engine
        record = overlay.record
        if user < len(engine.user_x):
            state = UserState(engine.user_x[user], engine.user_mask[user],
                              engine.user_profile[user], len(engine.seen.items_of(user)))
        else:
            state = self._proxy_state(record)
        if record is not None and record.attributes and self.user_attrs is not None:
            vector = self.user_attrs.embed(record.attributes)
            s = self.slot.get("user_attributes")
            if vector is not None and s is not None:
                x, mask = state.x.copy(), state.mask.copy()
                x[s], mask[s] = vector, True
                state = UserState(x, mask, state.profile, state.n_items)
        if len(overlay.pseudo):
            x, mask, _, _ = engine.item_rows(overlay.pseudo)
            state = engine.foldin.update(state, x, mask)
        return state

    def _proxy_state(self, record: UserRecord | None) -> UserState:
        engine = self.engine
        proxies = np.zeros(0, np.int64)
        if record is not None and record.friends:
            proxies = np.array([engine.users.get(f) for f in record.friends
                                if engine.users.get(f) is not None], dtype=np.int64)
        if not len(proxies) and record is not None and record.attributes:
            proxies = self._attribute_alike(record.attributes)
        if not len(proxies):
            return self.average_user
        states = [engine.user_view(int(p)).state for p in proxies]
        return UserState(np.mean([s.x for s in states], 0).astype(np.float32),
                         np.any([s.mask for s in states], 0),
                         np.mean([s.profile for s in states], 0).astype(np.float32), 0)

    def _attribute_alike(self, attributes) -> np.ndarray:
        given = {k: str(v) for k, v in attributes.items() if k in self.user_categorical}
        if not given:
            return np.zeros(0, np.int64)
        matches = sum((self.user_categorical[k] == v).astype(np.int64) for k, v in given.items())
        best = int(matches.max())
        if best == 0:
            return np.zeros(0, np.int64)
        return np.flatnonzero(matches == best)[:ATTRIBUTE_PROXIES].astype(np.int64)

    def _pseudo_history(self, record: UserRecord) -> np.ndarray:
        if self.matcher is None or not record.text:
            return np.zeros(0, np.int64)
        ids, _ = self.matcher.nearest(self.matcher.encode(record.text), TEXT_NEIGHBOURS)
        return ids

    def _apply_item(self, record: ItemRecord) -> None:
        engine = self.engine
        index = engine.items.get(record.item_id)
        if index is not None and not engine.items.is_new(index):
            return  # base items are fixed by the model (validate refuses them)
        lm = self.matcher.encode(self._item_text(record)) \
            if self.matcher is not None and record.text else None
        content = self._content_rows(record, lm)
        if content is not None:  # the model's own rows for an item nobody interacted with
            x, mask, borrowed = content.x.copy(), content.mask.copy(), content.open_sources
        else:  # a model without that rule: approximate its content encoders
            x, mask = self._approximate_rows(record, lm)
            borrowed = _BORROWED
        bias = self.mean_bias
        if lm is not None:
            neighbours, _ = self.matcher.nearest(lm, TEXT_NEIGHBOURS)
            if len(neighbours):
                nx, nmask, _, nbias = engine.item_rows(neighbours)
                for name in borrowed:
                    if name in self.slot:
                        s = self.slot[name]
                        x[s], mask[s] = nx[:, s].mean(0), bool(nmask[:, s].any())
                bias = float(nbias.mean())
        if content is not None and content.bias is not None and "interactions" not in borrowed:
            bias = content.bias  # the model's own bias for an item nobody interacted with
        fused = engine.space.fuse("item", x[None], mask[None])[0]
        table = engine.extra_items
        row = (index - len(engine.item_x)) if index is not None else len(table.bias)
        grow = lambda old, new: (np.concatenate([old, new[None]]) if row == len(old)  # noqa
                                 else _replaced(old, row, new))
        engine.extra_items = ItemTable(grow(table.x, x), grow(table.mask, mask),
                                       grow(table.fused, fused),
                                       grow(table.bias, np.float32(bias)))
        name = scrub_pii((record.text or "").strip().split("\n")[0])[:80]  # answered in APIs
        engine.items.add(record.item_id, name)  # published after its vectors exist

    def _item_text(self, record: ItemRecord) -> str:
        """The posted item as the run's textualiser renders an item (what its LM vectors of
        the catalogue encode), not the raw text."""
        from fusionrec.text.items import posted_item_text
        from fusionrec.text.options import TextOptions

        options = TextOptions.for_max_length(self.engine.run.model.text_encoder().max_length)
        return posted_item_text(self.engine.run.features, record.text, record.attributes,
                                record.tags, options)

    def _content_rows(self, record: ItemRecord, lm: np.ndarray | None):
        """The model's :class:`~fusionrec.models.servable.ContentRows` for the posted item,
        or None when the model has no such rule (or lacks an input it needs)."""
        rule = getattr(self.engine.run.model, "content_item_rows", None)
        if rule is None or ("item_text" in self.slot and self.matcher is None):
            return None
        attribute_row = None
        if self.item_attrs is not None and (record.attributes or record.tags):
            attribute_row = self.item_attrs.row(record.attributes, record.tags)
        if lm is None and attribute_row is None:
            return None  # nothing to place it by: it stays unplaced (409) as before
        return rule(lm, attribute_row)

    def _approximate_rows(self, record: ItemRecord, lm: np.ndarray | None):
        """Content rows through the re-fitted maps (ridge from bags / LM vectors to the stored
        rows), for models that do not give their own."""
        n_sources, dim = self.engine.item_x.shape[1:]
        x = np.zeros((n_sources, dim), np.float32)
        mask = np.zeros(n_sources, bool)
        s = self.slot.get("item_attributes")
        if s is not None and self.item_attrs is not None:
            vector = self.item_attrs.embed(record.attributes, record.tags)
            if vector is not None:
                x[s], mask[s] = vector, True
        if lm is not None:
            s = self.slot["item_text"]
            x[s], mask[s] = self.matcher.item_vector(lm), True
        return x, mask


def _replaced(array: np.ndarray, row: int, value) -> np.ndarray:
    out = array.copy()
    out[row] = value
    return out


def check_text(where: str, text: str | None, limit: int) -> None:
    if text is not None and len(text) > limit:
        raise RequestError(422, f"{where}: text has {len(text)} characters; the limit is "
                           f"{limit} (FUSIONREC_MAX_TEXT_CHARS)")


def _friend_matrix(social, n_users: int) -> sp.csr_matrix:
    if social is None or not len(social):
        return sp.csr_matrix((n_users, n_users), dtype=np.int8)
    source, target = social.both_directions()
    matrix = sp.csr_matrix((np.ones(len(source), np.int8), (source, target)),
                           shape=(n_users, n_users))
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def _text_matcher(engine, features, slot: int) -> TextMatcher:
    """LM features of the training items (through the embedding cache) and the encoder the
    run's model reads item text with (its servable ``text_encoder()``)."""
    from fusionrec.encoders.factory import build_encoder
    from fusionrec.models.fusion.build import load_text_features

    encoder_config = engine.run.model.text_encoder()
    encoder = build_encoder(encoder_config)
    text = load_text_features(features, encoder_config)
    return TextMatcher(encoder, text.item, engine.item_x[:, slot])
