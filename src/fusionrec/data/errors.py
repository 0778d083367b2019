"""The one error type of the data layer: a problem in the user's files, named precisely enough to fix.

``str(DataError(...))`` is always ONE line, e.g.
``lastfm-hetrec2011/tags.dat line 9: field 'tagValue' is not valid UTF-8 (byte 0xe1); set encoding: latin-1``.
"""

from __future__ import annotations

from fusionrec.errors import FusionRecError


class DataError(FusionRecError, ValueError):
    """A user-fixable data problem located by file, line (or row) and field.

    ``line`` is 1-based and counts the header line, like a text editor does; ``unit`` is
    ``"row"`` for formats without lines (parquet). ``line``/``field`` are ``None`` when the
    problem is about the whole file or a spec key.
    """

    def __init__(self, file: str, line: int | None, field: str | None, message: str,
                 unit: str = "line") -> None:
        self.file = str(file)
        self.line = None if line is None else int(line)
        self.field = field
        self.message = " ".join(str(message).split())  # one line, whatever the caller passed
        self.unit = unit
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file
        if self.line is not None:
            where += f" {self.unit} {self.line}"
        what = f"field '{self.field}' {self.message}" if self.field else self.message
        return f"{where}: {what}"

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self):  # keeps the exception picklable (multiprocessing, pytest-xdist)
        return (DataError, (self.file, self.line, self.field, self.message, self.unit))
