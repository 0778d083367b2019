"""Raw ids <-> indices for a service whose users and items can grow, plus display names.

The run's :class:`~fusionrec.data.schema.Vocabulary` is immutable; users and items created
through the API get the next free indices. Reads never lock: a new id is appended to the list
before it is published in the dict, so a reader that finds an index can always resolve it.
"""

from __future__ import annotations

from typing import Iterable, Sequence


class GrowingVocabulary:
    def __init__(self, ids: Iterable[str], names: Sequence[str] | None = None) -> None:
        self.ids: list[str] = [str(i) for i in ids]
        self.n_base = len(self.ids)
        self._index = {raw: i for i, raw in enumerate(self.ids)}
        self.names: list[str] = list(names) if names is not None else [""] * self.n_base

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, raw: object) -> bool:
        return str(raw) in self._index

    def get(self, raw: str) -> int | None:
        return self._index.get(str(raw))

    def add(self, raw: str, name: str = "") -> int:
        """Index of ``raw``, creating it (callers serialise writes)."""
        found = self._index.get(raw)
        if found is not None:
            if name:
                self.names[found] = name
            return found
        self.ids.append(raw)
        self.names.append(name)
        self._index[raw] = len(self.ids) - 1
        return len(self.ids) - 1

    def is_new(self, index: int) -> bool:
        return index >= self.n_base


def item_names(dataset) -> list[str] | None:
    """Titles (or names) of a dataset's items, if its item text has such a field; scrubbed
    of PII like every text the service answers with."""
    from fusionrec.text.scrub import scrub_pii

    fields = dataset.item_text.fields if dataset.item_text is not None else {}
    for field in ("title", "name"):
        if field in fields:
            return [scrub_pii(name) for name in fields[field]]
    return None
