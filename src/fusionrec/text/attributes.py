"""Attribute textualiser (user or item attribute columns) -> ``"genres: Crime, Thriller"`` parts."""

from __future__ import annotations

import numpy as np

from fusionrec.data.schema import Attributes
from fusionrec.text.budget import Section
from fusionrec.text.common import clean, fmt_number, humanise
from fusionrec.text.scrub import is_pii_column


class AttributeText:
    """One part per non-empty, non-identifying column, in column order."""

    def __init__(self, attributes: Attributes | None, max_chars: int = 60) -> None:
        columns = {} if attributes is None else attributes.columns
        # Quasi-identifiers (zip code, e-mail, ...) never reach a model, whatever their values.
        self.columns = {name: col for name, col in columns.items() if not is_pii_column(name)}
        self.max_chars = max_chars

    def _value(self, column: np.ndarray, index: int) -> str:
        value = column[index]
        if column.dtype.kind in "fiu":
            return fmt_number(float(value))
        text = " ".join(clean(str(value)).split()).replace("|", ", ")
        return text if len(text) <= self.max_chars else text[: self.max_chars].rsplit(" ", 1)[0]

    def parts(self, index: int) -> tuple[str, ...]:
        out = []
        for name, column in self.columns.items():
            value = self._value(column, index)
            if value:
                out.append(f"{humanise(name)}: {value}")
        return tuple(out)

    def section(self, index: int, priority: int) -> Section:
        return Section("", self.parts(index), priority, joiner="; ")
