"""Reading one file of a spec into a :class:`Table`, with every row's line number kept.

CSV/TSV go through ``pyarrow.csv`` (fast, and it reports each line whose field count is wrong, so
a truncated last line is caught instead of silently padded); JSON Lines are parsed line by line;
parquet through ``pyarrow.parquet``. Encoding problems are located by line and field.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data.errors import DataError
from fusionrec.data.spec import TableSpec


@dataclass(frozen=True)
class BadLine:
    """A line that could not become a row (wrong field count, invalid JSON)."""

    line: int
    field: str | None
    message: str


@dataclass(frozen=True, eq=False)
class Table:
    """The rows of one file. ``lines[i]`` is the 1-based line (``unit`` "line", header counted)
    or row number (``unit`` "row", parquet) of ``frame`` row ``i``."""

    file: str
    frame: pd.DataFrame
    lines: np.ndarray
    unit: str = "line"
    bad_lines: tuple[BadLine, ...] = ()
    blank_lines: int = 0
    header: bool = True

    @property
    def n_read(self) -> int:
        return len(self.frame) + len(self.bad_lines) + self.blank_lines

    def error(self, row: int | None, field: str | None, message: str) -> DataError:
        line = None if row is None else int(self.lines[row])
        return DataError(self.file, line, field, message, unit=self.unit)


def locate(spec: TableSpec, root: Path) -> Path:
    path = Path(spec.file).expanduser()
    return path if path.is_absolute() else root / path


def _download_hint(file: str) -> str:
    from fusionrec.data.download import REMOTE

    folder = Path(file).parts[0] if len(Path(file).parts) > 1 else None
    names = [r.name for r in REMOTE.values() if r.folder == folder]
    return f"run `fusionrec data download {names[0]}`" if names else "place the file there"


def read_table(spec: TableSpec, root: Path) -> Table:
    """Read ``spec.file`` under ``root``; problems raise a one-line :class:`DataError`."""
    path = locate(spec, root)
    display = spec.file
    if not path.is_file():
        raise DataError(display, None, None,
                        f"not found (looked for {path}); check --data-dir / FUSIONREC_DATA, "
                        f"or {_download_hint(spec.file)}")
    if spec.format == "parquet":
        return _read_parquet(path, display)
    raw = path.read_bytes()
    if spec.compression == "gzip":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataError(display, None, None, f"is not a complete gzip file ({error}); "
                            "re-download it or set compression: none") from None
    if codecs.lookup(spec.encoding).name == "utf-8" and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    if not raw.strip():
        raise DataError(display, None, None, "is empty (no data rows)")
    if spec.format == "jsonl":
        return _read_jsonl(raw, spec, display)
    return _read_delimited(raw, spec, display)


def encoding_error(raw: bytes, spec: TableSpec, display: str, names=None) -> DataError:
    """Locate the first byte that ``spec.encoding`` cannot decode: line, field and a fix."""
    name = codecs.lookup(spec.encoding).name
    try:
        raw.decode(spec.encoding)
    except UnicodeDecodeError as error:
        start = raw.rfind(b"\n", 0, error.start) + 1
        line = raw.count(b"\n", 0, error.start) + 1
        field = None
        if names and spec.format in ("csv", "tsv"):
            index = raw[start:error.start].count(spec.sep.encode())
            field = names[index] if index < len(names) else None
        label = "UTF-8" if name == "utf-8" else name
        fix = "latin-1" if name != "latin-1" else "cp1252"
        return DataError(display, line, field, f"is not valid {label} "
                         f"(byte 0x{raw[error.start]:02x}); set encoding: {fix}")
    return DataError(display, None, None, f"cannot be decoded as {name}")


def _header_names(raw: bytes, spec: TableSpec, display: str) -> list[str]:
    # pyarrow ends a line at \r\n, \n or a lone \r: the header is whatever comes first
    first = re.split(rb"\r\n|\n|\r", raw, maxsplit=1)[0]
    try:
        text = first.decode(spec.encoding)
    except UnicodeDecodeError:
        raise encoding_error(first, spec, display) from None
    quoting = csv.QUOTE_NONE if spec.quoting == "none" else csv.QUOTE_MINIMAL
    try:
        names = [n.strip() for n in next(csv.reader([text], delimiter=spec.sep,
                                                    quoting=quoting))]
    except (csv.Error, StopIteration) as error:  # e.g. an unterminated quote in the header
        raise DataError(display, 1, None, f"header cannot be parsed ({error}); fix the header "
                        "or give names:") from None
    if not any(names):
        raise DataError(display, 1, None, "header line is empty; fix the header or give names:")
    seen: set[str] = set()
    for name in names:
        if name in seen or not name:
            what = f"repeats column {name!r}" if name else "has an empty column name"
            raise DataError(display, 1, None, f"header {what}; fix the header or give names:")
        seen.add(name)
    return names


def _read_delimited(raw: bytes, spec: TableSpec, display: str) -> Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = list(spec.names) if spec.names else _header_names(raw, spec, display)
    skip = 1 if spec.header else 0
    bad: list[BadLine] = []

    def on_bad_row(row) -> str:
        # An exception here would be swallowed by pyarrow ("ignored"), so nothing may raise.
        try:
            blank = not row.text.strip()
        except UnicodeDecodeError:  # not valid text: the encoding check names the byte
            blank = False
        if row.actual_columns < row.expected_columns:
            field = (names[row.actual_columns]
                     if not blank and row.actual_columns < len(names) else None)
            message = (f"has {row.actual_columns} of {row.expected_columns} fields "
                       "(truncated line, or wrong sep?)")
        else:
            field = None
            message = (f"has {row.actual_columns} fields, expected {row.expected_columns}; "
                       "check sep and quoting")
        bad.append(BadLine(int(row.number), field, message))
        return "skip"

    quoted = spec.quoting != "none"
    if codecs.lookup(spec.encoding).name == "utf-8":
        # Checked up front: pyarrow decodes a malformed row's text before our handler sees it,
        # and a decode error there is swallowed rather than reported.
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise encoding_error(raw, spec, display, names) from None
    try:
        arrow = pacsv.read_csv(
            io.BytesIO(raw),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=names, skip_rows=skip,
                                           encoding=spec.encoding),
            parse_options=pacsv.ParseOptions(delimiter=spec.sep, quote_char='"' if quoted else False,
                                             double_quote=quoted, newlines_in_values=quoted,
                                             ignore_empty_lines=False,
                                             invalid_row_handler=on_bad_row),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False))
    except pa.ArrowInvalid as error:
        if "utf8" in str(error).lower() or "utf-8" in str(error).lower():
            raise encoding_error(raw, spec, display, names) from None
        raise DataError(display, None, None, f"cannot be parsed as {spec.format}: {error}") from None
    frame = arrow.to_pandas()
    total = arrow.num_rows + len(bad)
    lines = np.arange(skip + 1, skip + 1 + total, dtype=np.int64)
    if bad:
        lines = lines[~np.isin(lines, [b.line for b in bad])]
    blank = np.ones(len(frame), dtype=bool)
    for name in names:
        blank &= (frame[name] == "").to_numpy()
    if blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    if len(frame) == 0 and not bad:
        what = "has a header but no data rows" if spec.header else "has no data rows"
        raise DataError(display, None, None, f"{what} (empty file)")
    return Table(display, frame, lines, "line", tuple(bad), int(blank.sum()), spec.header)


def _read_jsonl(raw: bytes, spec: TableSpec, display: str) -> Table:
    try:
        text = raw.decode(spec.encoding)
    except UnicodeDecodeError:
        raise encoding_error(raw, spec, display) from None
    records, lines, bad, blank = [], [], [], 0
    decode = json.loads
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            blank += 1
            continue
        try:
            record = decode(line)
        except json.JSONDecodeError as error:
            bad.append(BadLine(number, None, f"is not valid JSON ({error.msg} at column "
                                             f"{error.colno}); truncated line?"))
            continue
        if not isinstance(record, dict):
            bad.append(BadLine(number, None, "is not a JSON object {...}"))
            continue
        records.append(record)
        lines.append(number)
    blank -= text.endswith("\n")  # the final newline ends a line; it is not a blank line
    if not records and not bad:
        raise DataError(display, None, None, "is empty (no JSON records)")
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    return Table(display, frame, np.asarray(lines, dtype=np.int64), "line", tuple(bad),
                 max(blank, 0), True)


def _read_parquet(path: Path, display: str) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise DataError(display, None, None, f"is not a readable parquet file ({error})") from None
    if len(frame) == 0:
        raise DataError(display, None, None, "has no rows (empty file)")
    return Table(display, frame.reset_index(drop=True),
                 np.arange(1, len(frame) + 1, dtype=np.int64), "row", (), 0, True)
