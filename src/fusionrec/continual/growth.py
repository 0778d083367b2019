"""Growing a run's dataset with what the service recorded since: new interactions, new users
and items (with their text, attributes, tags and friends).

Vocabularies only ever grow at the end, so every index of the old dataset keeps its meaning in
the grown one; a warm start copies rows by position-independent keys anyway
(:mod:`fusionrec.continual.warm_start`). Raw ids come from the event store, never indices.

What is used: positive events (like, play, click, a rating of at least 3.5 — the service's own
rule) become interactions; dislikes and low ratings are kept as explicit negatives (CTR labels).
New items' text goes into the first ``item_text`` field, their attributes and tags into
``item_attributes`` (an unseen tag grows the tag vocabulary); new users' attributes into
``user_attributes``; friends of any recorded user into ``social``. A source the dataset does
not have is not invented (the model's sources are fixed); such data is counted and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

from fusionrec.data.leakage import pair_keys
from fusionrec.data.schema import (Attributes, Dataset, ItemAttributes, ItemText, Interactions,
                                   Social, Tags, Vocabulary)


@dataclass(frozen=True)
class EventSnapshot:
    """The store's contents after ``after_id``: events in write order plus every user/item
    record; ``upto_id`` is the last event id read (the next retrain starts after it)."""

    events: tuple  # serving.store.Event
    users: tuple   # serving.store.UserRecord
    items: tuple   # serving.store.ItemRecord
    after_id: int
    upto_id: int


def read_snapshot(store, after_id: int = 0) -> EventSnapshot:
    """Everything ``store`` (an ``EventStore``) holds after event ``after_id``."""
    events = tuple(store.events(after_id=after_id))
    upto = events[-1].event_id if events else after_id
    return EventSnapshot(events, tuple(store.users()), tuple(store.items()), after_id, upto)


@dataclass(frozen=True)
class GrownDataset:
    """A dataset grown by a snapshot, and the new labelled pairs in its (grown) indices."""

    dataset: Dataset
    new_users: tuple[str, ...]
    new_items: tuple[str, ...]
    positive_user: np.ndarray  # (p,) distinct new positive pairs, in event order
    positive_item: np.ndarray
    negative_user: np.ndarray  # (q,) explicit negatives (dislike, low rating), distinct
    negative_item: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)


class _Ids:
    """An append-only vocabulary under construction."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.ids = list(vocab.ids)
        self.index = {raw: i for i, raw in enumerate(self.ids)}
        self.base = len(self.ids)

    def add(self, raw: str) -> int:
        raw = str(raw)
        if raw not in self.index:
            self.index[raw] = len(self.ids)
            self.ids.append(raw)
        return self.index[raw]

    @property
    def new(self) -> tuple[str, ...]:
        return tuple(self.ids[self.base:])


def grow_dataset(dataset: Dataset, snapshot: EventSnapshot) -> GrownDataset:
    """``dataset`` plus ``snapshot`` (see the module docstring)."""
    from fusionrec.data.events import is_positive

    users, items = _Ids(dataset.users), _Ids(dataset.items)
    item_records = {r.item_id: r for r in snapshot.items if r.item_id not in items.index}
    user_records = {r.user_id: r for r in snapshot.users if r.user_id not in users.index}
    for raw in item_records:
        items.add(raw)
    for raw in user_records:
        users.add(raw)
    counts = {"events": len(snapshot.events), "positive_events": 0, "negative_events": 0,
              "ignored_events": 0, "known_pairs": 0, "skipped_records": 0}
    rows = {"user": [], "item": [], "value": [], "kind": [], "ts": []}
    negatives = []
    for event in snapshot.events:
        user, item = users.add(event.user_id), items.add(event.item_id)
        if is_positive(event.kind, event.value):
            counts["positive_events"] += 1
            for key, value in zip(rows, (user, item, event.value, event.kind, event.timestamp)):
                rows[key].append(value)
        elif event.kind in ("dislike", "rating"):
            counts["negative_events"] += 1
            negatives.append((user, item))
        else:
            counts["ignored_events"] += 1
    n_items = len(items.ids)
    inter = dataset.interactions
    user = np.asarray(rows["user"], np.int64)
    item = np.asarray(rows["item"], np.int64)
    keys = pair_keys(user, item, n_items)
    _, first = np.unique(keys, return_index=True)
    first = np.sort(first)  # one row per distinct pair, in event order
    fresh = first[~np.isin(keys[first], pair_keys(inter.user, inter.item, n_items))]
    counts["known_pairs"] = int(len(first) - len(fresh))
    neg = np.asarray(negatives, np.int64).reshape(-1, 2)
    if len(neg):
        nkeys = pair_keys(neg[:, 0], neg[:, 1], n_items)
        _, nfirst = np.unique(nkeys, return_index=True)
        neg = neg[np.sort(nfirst)]
    grown = dataset.replace(
        users=Vocabulary(tuple(users.ids)), items=Vocabulary(tuple(items.ids)),
        interactions=_grow_interactions(inter, rows, fresh),
        item_text=_grow_text(dataset.item_text, items, item_records, counts),
        item_attributes=_grow_item_attributes(dataset.item_attributes, items, item_records,
                                              counts, max(rows["ts"], default=0.0)),
        user_attributes=_grow_attributes(dataset.user_attributes, users, user_records, counts),
        social=_grow_social(dataset.social, users, snapshot.users, counts))
    counts.update(new_users=len(users.new), new_items=len(items.new),
                  new_positive_pairs=int(len(fresh)), new_negative_pairs=int(len(neg)))
    return GrownDataset(grown, users.new, items.new, user[fresh], item[fresh],
                        neg[:, 0].copy(), neg[:, 1].copy(), counts)


def _grow_interactions(inter: Interactions, rows: dict, take: np.ndarray) -> Interactions:
    """One new row per distinct new pair: weight = a play's value (else 1), rating = a
    rating's value, else (a like, play or click on rated data) the median of the dataset's
    own positive ratings — stored datasets have no missing ratings; timestamp = the event's."""
    from fusionrec.data.events import RATING_POSITIVE

    kind = [rows["kind"][j] for j in take]
    value = [rows["value"][j] for j in take]
    weight = [v if k == "play" and v is not None else 1.0 for k, v in zip(kind, value)]
    typical = np.nan
    if inter.rating is not None and len(inter.rating):
        liked = inter.rating[inter.rating >= RATING_POSITIVE]
        typical = float(np.median(liked if len(liked) else inter.rating))
    rating = [v if k == "rating" else typical for k, v in zip(kind, value)]
    stamps = [int(rows["ts"][j]) for j in take]
    extend = lambda old, new: None if old is None else np.concatenate([old, new])  # noqa: E731
    return Interactions(np.concatenate([inter.user, np.asarray(rows["user"], np.int64)[take]]),
                        np.concatenate([inter.item, np.asarray(rows["item"], np.int64)[take]]),
                        extend(inter.rating, np.asarray(rating, np.float32)),
                        extend(inter.weight, np.asarray(weight, np.float32)),
                        extend(inter.timestamp, np.asarray(stamps, np.int64)))


def _grow_text(text: ItemText | None, items: _Ids, records: dict, counts: dict):
    if text is None:
        counts["skipped_records"] += sum(1 for r in records.values() if r.text)
        return None
    fields = {name: list(values) for name, values in text.fields.items()}
    first = next(iter(fields), None)
    for raw in items.new:
        record = records.get(raw)
        for name in fields:
            fields[name].append(record.text if record and record.text and name == first else "")
    return ItemText({k: tuple(v) for k, v in fields.items()})


def _grow_attributes(attributes: Attributes | None, ids: _Ids, records: dict, counts: dict):
    if attributes is None or not attributes.columns:
        counts["skipped_records"] += sum(1 for r in records.values() if r.attributes)
        return attributes
    columns = {}
    for name, column in attributes.columns.items():
        column = np.asarray(column)
        numeric = column.dtype.kind in "fiub"
        new = [records[raw].attributes.get(name) if raw in records else None for raw in ids.new]
        if numeric:
            extra = np.asarray([np.nan if v is None else float(v) for v in new], np.float64)
            columns[name] = np.concatenate([column.astype(np.float64), extra])
        else:
            extra = np.asarray(["" if v is None else str(v) for v in new], dtype=object)
            columns[name] = np.concatenate([column.astype(object), extra])
    return Attributes(columns)


def _grow_item_attributes(attrs: ItemAttributes | None, items: _Ids, records: dict,
                          counts: dict, stamp: float):
    if attrs is None:
        counts["skipped_records"] += sum(1 for r in records.values() if r.attributes or r.tags)
        return None
    table = _grow_attributes(attrs.attributes, items, records, counts) \
        if attrs.attributes is not None else None
    tags = attrs.tags
    if tags is not None:
        vocab = _Ids(tags.vocabulary)
        new_item, new_tag = [], []
        for raw in items.new:
            for tag in dict.fromkeys(records[raw].tags if raw in records else ()):
                new_item.append(items.index[raw])
                new_tag.append(vocab.add(tag))
        n = len(new_item)
        extend = lambda old, fill: None if old is None else np.concatenate(  # noqa: E731
            [old, np.full(n, fill, old.dtype)])
        tags = Tags(np.concatenate([tags.item, np.asarray(new_item, np.int64)]),
                    np.concatenate([tags.tag, np.asarray(new_tag, np.int64)]),
                    Vocabulary(tuple(vocab.ids)), extend(tags.user, -1),  # no tagging user
                    extend(tags.weight, 1.0), extend(tags.timestamp, int(stamp)))
    elif any(r.tags for r in records.values()):
        counts["skipped_records"] += sum(1 for r in records.values() if r.tags)
    return ItemAttributes(table, tags)


def _grow_social(social: Social | None, users: _Ids, records, counts: dict):
    """Friend edges of every user record (known users too), both ends known, not yet present."""
    pairs = [(users.index[r.user_id], users.index[f]) for r in records if r.user_id in users.index
             for f in r.friends if f in users.index and f != r.user_id]
    if social is None:
        counts["skipped_records"] += int(bool(pairs))
        return None
    canon = (lambda s, t: (s, t)) if social.directed else (lambda s, t: (min(s, t), max(s, t)))
    have = {canon(int(s), int(t)) for s, t in zip(social.source, social.target)}
    added = list(dict.fromkeys(canon(s, t) for s, t in pairs if canon(s, t) not in have))
    counts["new_friendships"] = len(added)
    if not added:
        return social
    s, t = np.asarray(added, np.int64).T
    weight = None if social.weight is None else np.concatenate([social.weight, np.ones(len(s))])
    return Social(np.concatenate([social.source, s]), np.concatenate([social.target, t]),
                  social.directed, weight)
