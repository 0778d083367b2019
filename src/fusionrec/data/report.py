"""What loading did to every file: rows read, kept, dropped per reason, and counted warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType({str(k): int(v) for k, v in counts.items() if int(v)})


@dataclass(frozen=True)
class FileReport:
    """One file read for one source. ``rows_read == rows_kept + sum(dropped.values())``;
    ``warnings`` count rows kept despite a problem (e.g. an empty review text kept by policy)."""

    source: str
    file: str
    rows_read: int
    rows_kept: int
    dropped: Mapping[str, int] = field(default_factory=dict)
    warnings: Mapping[str, int] = field(default_factory=dict)
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dropped", _frozen_counts(self.dropped))
        object.__setattr__(self, "warnings", _frozen_counts(self.warnings))
        if self.rows_read != self.rows_kept + sum(self.dropped.values()):
            raise ValueError(f"{self.file}: rows read ({self.rows_read}) != kept ({self.rows_kept})"
                             f" + dropped ({sum(self.dropped.values())})")

    def to_dict(self) -> dict:
        return {"source": self.source, "file": self.file, "rows_read": self.rows_read,
                "rows_kept": self.rows_kept, "dropped": dict(self.dropped),
                "warnings": dict(self.warnings), "note": self.note}


@dataclass(frozen=True)
class LoadReport:
    """The report of one :func:`~fusionrec.data.load.load_dataset` / ``validate`` run.

    ``counts`` holds the sizes of the loaded dataset (users, items, rows per source);
    ``errors`` the one-line errors that made the data unusable (empty when it loaded).
    """

    dataset: str
    data_dir: str
    files: tuple[FileReport, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "counts", MappingProxyType({k: int(v)
                                                             for k, v in self.counts.items()}))
        object.__setattr__(self, "errors", tuple(str(e) for e in self.errors))

    @property
    def usable(self) -> bool:
        return not self.errors

    def file(self, source: str) -> FileReport:
        """The report of the (first) file read for ``source``, e.g. ``"social"``."""
        for report in self.files:
            if report.source == source:
                return report
        raise KeyError(f"no file was read for source {source!r}; "
                       f"read: {[r.source for r in self.files]}")

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "data_dir": self.data_dir, "usable": self.usable,
                "counts": dict(self.counts), "files": [r.to_dict() for r in self.files],
                "errors": list(self.errors), "seconds": round(self.seconds, 3)}

    def summary(self) -> str:
        """A plain-text table: one line per file, then one indented line per drop/warning reason."""
        head = f"dataset {self.dataset!r} (data root {self.data_dir})"
        rows = [("source", "file", "read", "kept", "dropped")]
        for r in self.files:
            rows.append((r.source, r.file, f"{r.rows_read:,}", f"{r.rows_kept:,}",
                         f"{r.rows_read - r.rows_kept:,}"))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [head, ""]
        for n, row in enumerate(rows):
            cells = [row[i].ljust(widths[i]) if i < 2 else row[i].rjust(widths[i])
                     for i in range(5)]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                continue
            report = self.files[n - 1]
            lines += [f"    dropped {count:,}: {reason}" for reason, count in report.dropped.items()]
            lines += [f"    warning {count:,}: {reason}" for reason, count in report.warnings.items()]
            if report.note:
                lines.append(f"    note: {report.note}")
        if not self.files:
            lines = [head, "(no files read)"]
        if self.counts:
            lines += ["", "loaded: " + ", ".join(f"{k} {v:,}" for k, v in self.counts.items())]
        if self.errors:
            lines += ["", f"{len(self.errors)} error(s):"] + [f"  {e}" for e in self.errors]
        else:
            lines.append(f"usable: yes ({self.seconds:.2f} s)")
        return "\n".join(lines)
