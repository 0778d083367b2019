"""Row-level checks on one file, each ending in a one-line :class:`DataError` or a counted drop.

:class:`Rows` walks a :class:`~fusionrec.data.readers.Table` with a keep-mask: every check looks
only at rows still kept, so each dropped row is counted once, under the first reason that hit it.
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Callable

import numpy as np
import pandas as pd

from fusionrec.data.errors import DataError
from fusionrec.data.readers import Table
from fusionrec.data.report import FileReport
from fusionrec.data.schema import Vocabulary


def id_strings(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Ids as an object array of ``str`` plus a mask of missing ids (empty, NaN, None)."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        values = series.astype(str).to_numpy(dtype=object)
        return values, np.zeros(len(values), dtype=bool)
    if pd.api.types.is_float_dtype(series):
        numbers = series.to_numpy(dtype=np.float64)
        missing = np.isnan(numbers)
        whole = ~missing & (numbers == np.round(numbers))
        values = np.array([str(int(v)) if w else ("" if m else repr(float(v)))
                           for v, w, m in zip(numbers, whole, missing)], dtype=object)
        return values, missing
    if pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series):
        values = series.to_numpy(dtype=object, na_value="")
    else:  # object columns (JSON): ints, floats, strings or None mixed
        values = np.array([_one_id(v) for v in series.to_numpy(dtype=object)], dtype=object)
    missing = np.array([not v.strip() for v in values], dtype=bool)
    return values, missing


def _one_id(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def texts(series: pd.Series) -> tuple[str, ...]:
    """Free text: missing values become ``""``."""
    return tuple("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                 for v in series.to_numpy(dtype=object))


def parse_numbers(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, bad, missing)``: floats (NaN where missing or unparsable) and the two masks."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.zeros(len(values), dtype=bool), np.isnan(values)
    if pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series):
        import pyarrow as pa
        import pyarrow.compute as pc

        trimmed = pc.utf8_trim_whitespace(pa.array(series))
        missing = pc.fill_null(pc.equal(trimmed, ""), True).to_numpy(zero_copy_only=False)
        nulled = pc.if_else(missing, pa.scalar(None, trimmed.type), trimmed)
        try:
            values = pc.cast(nulled, pa.float64()).to_numpy(zero_copy_only=False)
            return values.astype(np.float64), np.zeros(len(values), dtype=bool), missing
        except pa.ArrowInvalid:  # some cell is not a number: find which, the slow way
            values = pd.to_numeric(pd.Series(nulled.to_pylist(), dtype=object),
                                   errors="coerce").to_numpy(dtype=np.float64)
            return values, np.isnan(values) & ~missing, missing
    raw = series.to_numpy(dtype=object)
    missing = np.array([v is None or (isinstance(v, str) and not v.strip())
                        or (isinstance(v, float) and np.isnan(v)) for v in raw], dtype=bool)
    values = pd.to_numeric(pd.Series(np.where(missing, None, raw), dtype=object),
                           errors="coerce").to_numpy(dtype=np.float64)
    return values, np.isnan(values) & ~missing, missing


_BAD_LINE_REASONS = (("fields, expected", "line with too many fields"),
                     ("fields (truncated", "line with too few fields"),
                     ("JSON", "line that is not valid JSON"))


class Rows:
    """One file's rows under checks: a keep-mask plus drop and warning counts per reason."""

    def __init__(self, table: Table, source: str, bad_rows: str = "error") -> None:
        self.table = table
        self.source = source
        self.bad_rows = bad_rows
        self.keep = np.ones(len(table.frame), dtype=bool)
        self.dropped: Counter = Counter()
        self.warnings: Counter = Counter()
        if table.blank_lines:
            self.dropped["blank line"] += table.blank_lines
        if table.bad_lines:
            first = table.bad_lines[0]
            if bad_rows == "error":
                more = f" ({len(table.bad_lines)} lines like this)" if len(table.bad_lines) > 1 else ""
                raise DataError(table.file, first.line, first.field,
                                f"{first.message}{more}; fix the file or set bad_rows: drop",
                                unit=table.unit)
            for bad in table.bad_lines:
                reason = next((r for key, r in _BAD_LINE_REASONS if key in bad.message),
                              "unreadable line")
                self.dropped[reason] += 1

    def __len__(self) -> int:
        return len(self.keep)

    # -- columns -------------------------------------------------------------------------------
    def require(self, *columns: str) -> None:
        have = [str(c) for c in self.table.frame.columns]
        for column in columns:
            if column not in have:
                close = difflib.get_close_matches(column, have, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                if len(have) == 1 and any(sep in have[0] for sep in ",;\t|"):
                    hint = "the header was read as one column: is sep right? "
                line = 1 if self.table.header and self.table.unit == "line" else None
                raise DataError(self.table.file, line, column,
                                f"not found; {hint}the columns are {', '.join(have)}",
                                unit=self.table.unit)

    def series(self, column: str) -> pd.Series:
        self.require(column)
        return self.table.frame[column]

    def ids(self, column: str) -> np.ndarray:
        """Id strings of ``column``; rows with a missing id fail or drop (``bad_rows``)."""
        values, missing = id_strings(self.series(column))
        self.reject(missing, self.bad_rows, f"missing {column}", column,
                    lambda row: "is empty (a missing id)", "fill it in or set bad_rows: drop")
        return values

    def numbers(self, column: str, required: bool = True) -> np.ndarray:
        """Floats of ``column``; unparsable cells (and, if ``required``, empty ones) are bad rows."""
        series = self.series(column)
        values, bad, missing = parse_numbers(series)
        self.reject(bad, self.bad_rows, f"{column} is not a number", column,
                    lambda row: f"is not a number ({series.iloc[row]!r})",
                    "fix it or set bad_rows: drop")
        if required:
            self.reject(missing, self.bad_rows, f"missing {column}", column,
                        lambda row: "is empty (a number is required)",
                        "fill it in or set bad_rows: drop")
        return values

    def timestamps(self, columns, fmt: str = "unix") -> np.ndarray:
        """Unix seconds from one column (``unix``, ``unix_ms`` or a strptime ``fmt``) or from
        three ``[year, month, day]`` columns."""
        if isinstance(columns, tuple):
            if len(columns) != 3:
                raise DataError(self.table.file, None, None,
                                "timestamp: give one column or three [year, month, day]")
            parts = [self.numbers(c) for c in columns]
            frame = pd.DataFrame({"year": parts[0], "month": parts[1], "day": parts[2]})
            stamps = pd.to_datetime(frame.fillna(1).astype(np.int64), errors="coerce")
            field, shown = columns[0], lambda row: tuple(int(p[row]) for p in parts)
        elif fmt in ("unix", "unix_ms"):
            seconds = self.numbers(columns)
            if fmt == "unix_ms":
                seconds = seconds / 1000.0
            return np.nan_to_num(np.floor(seconds), nan=0).astype(np.int64)
        else:
            raw = self.series(columns)
            text = raw.astype(str)
            stamps = pd.to_datetime(text, format=fmt, errors="coerce")
            field, shown = columns, lambda row: raw.iloc[row]
        bad = stamps.isna().to_numpy()
        self.reject(bad, self.bad_rows, f"{field} is not a valid date", field,
                    lambda row: f"is not a valid date ({shown(row)!r}, format {fmt!r})",
                    "fix it or set bad_rows: drop")
        seconds = stamps.to_numpy(dtype="datetime64[s]").astype(np.int64, copy=False)
        return np.where(bad, 0, seconds)

    # -- policies ------------------------------------------------------------------------------
    def reject(self, mask: np.ndarray, policy: str, reason: str, field: str | None,
               describe: Callable[[int], str], hint: str) -> None:
        """Kept rows in ``mask`` are bad: raise on the first (policy ``error``) or drop them."""
        mask = np.asarray(mask, dtype=bool) & self.keep
        count = int(mask.sum())
        if not count:
            return
        if policy == "error":
            row = int(np.flatnonzero(mask)[0])
            more = f" ({count:,} lines like this)" if count > 1 else ""
            raise self.table.error(row, field, f"{describe(row)}{more}; {hint}")
        self.drop(mask, reason)

    def drop(self, mask: np.ndarray, reason: str) -> None:
        """Drop kept rows in ``mask`` on purpose (a policy or a spec rule), counted."""
        mask = np.asarray(mask, dtype=bool) & self.keep
        count = int(mask.sum())
        if count:
            self.keep &= ~mask
            self.dropped[reason] += count

    def warn(self, mask: np.ndarray, reason: str) -> None:
        count = int((np.asarray(mask, dtype=bool) & self.keep).sum())
        if count:
            self.warnings[reason] += count

    def known(self, vocabulary: Vocabulary, values: np.ndarray, policy: str, field: str,
              kind: str) -> np.ndarray:
        """Dense indices of ``values``; unknown ids (``-1``) fail or drop (``unknown_ids``)."""
        index = np.full(len(values), -1, dtype=np.int64)
        index[self.keep] = vocabulary.indices(values[self.keep])
        self.reject(index < 0, policy, f"unknown {kind}", field,
                    lambda row: f"refers to unknown {kind} {values[row]!r}",
                    "set unknown_ids: drop to skip such rows")
        return index

    def duplicates(self, keys: dict[str, np.ndarray], policy: str, what: str) -> None:
        """Repeated key tuples among kept rows: error, drop all but the first in file order
        (``dedupe``: the lowest kept line wins, whatever its values), or keep (counted)."""
        rows = np.flatnonzero(self.keep)
        frame = pd.DataFrame({name: np.asarray(col)[rows] for name, col in keys.items()})
        repeated = frame.duplicated(keep="first").to_numpy()
        if not repeated.any():
            return
        mask = np.zeros(len(self.keep), dtype=bool)
        mask[rows[repeated]] = True
        reason = f"duplicate {what}"
        if policy == "keep":
            self.warn(mask, f"{reason} (kept)")
            return

        def describe(row: int) -> str:
            value = tuple(str(np.asarray(col)[row]) for col in keys.values())
            same = (frame == frame.loc[int(np.searchsorted(rows, row))]).all(axis=1).to_numpy()
            first = int(self.table.lines[rows[np.flatnonzero(same)[0]]])
            return f"repeats {what} {value} first seen on {self.table.unit} {first}"

        self.reject(mask, policy, reason, ", ".join(keys), describe,
                    "set duplicates: dedupe (or keep)")

    # -- results -------------------------------------------------------------------------------
    def kept(self, values):
        if isinstance(values, tuple):
            return tuple(v for v, k in zip(values, self.keep) if k)
        return np.asarray(values)[self.keep]

    def report(self, note: str = "") -> FileReport:
        return FileReport(self.source, self.table.file, self.table.n_read, int(self.keep.sum()),
                          dict(self.dropped), dict(self.warnings), note)
