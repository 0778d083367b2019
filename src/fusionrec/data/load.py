"""``load_dataset``: a spec file or preset name -> a :class:`Dataset` plus a :class:`LoadReport`.

Order of work: read interactions (and KG links when items are restricted to the KG), read the
other sources' ids, build the user and item vocabularies (explicit lists first, then the
``*_from`` sources in first-seen order), then map every source onto them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from fusionrec.data import sources as S
from fusionrec.data.errors import DataError
from fusionrec.data.paths import preset_names, preset_path, resolve_data_dir
from fusionrec.data.readers import Table, locate, read_table
from fusionrec.data.report import FileReport, LoadReport
from fusionrec.data.schema import Dataset, ItemAttributes, Vocabulary
from fusionrec.data.spec import DatasetSpec, TableSpec
from fusionrec.data.spec_yaml import read_spec
from fusionrec.data.validate import Rows

SYNTHETIC = "synthetic"


def resolve_spec(spec_or_preset: str | os.PathLike | DatasetSpec) -> tuple[DatasetSpec | None,
                                                                            Path | None]:
    """``(spec, folder of the spec file)``; ``(None, None)`` for the synthetic preset."""
    if isinstance(spec_or_preset, DatasetSpec):
        return spec_or_preset, None
    text = os.fspath(spec_or_preset)
    if text == SYNTHETIC:
        return None, None
    preset = preset_path(text) if "/" not in text and not text.endswith((".yaml", ".yml")) else None
    if preset is not None:
        return read_spec(preset), None
    path = Path(text).expanduser()
    if path.is_file():
        return read_spec(path), path.resolve().parent
    raise DataError(text, None, None, "is neither a preset name "
                    f"({', '.join(preset_names())}) nor an existing spec file")


def data_root(spec: DatasetSpec, spec_dir: Path | None, data_dir=None) -> Path:
    """``root:`` of the spec (relative to its file) wins; else ``--data-dir`` > env > default."""
    if spec.root is not None:
        root = Path(spec.root).expanduser()
        return root if root.is_absolute() or spec_dir is None else spec_dir / root
    return resolve_data_dir(data_dir)


def load_dataset(spec_or_preset, data_dir=None) -> tuple[Dataset, LoadReport]:
    """Load a preset (``lastfm``, ``lastfm-kg``, ``ml-100k``, ``amazon-instruments``,
    ``synthetic``) or a spec file. The first data problem raises a one-line :class:`DataError`."""
    dataset, report = _run(spec_or_preset, data_dir, strict=True)
    return dataset, report


def validate_dataset(spec_or_preset, data_dir=None) -> tuple[Dataset | None, LoadReport]:
    """Like :func:`load_dataset` but collects the errors of every source into the report
    (``report.errors``) instead of stopping at the first; the dataset is ``None`` if any."""
    try:
        return _run(spec_or_preset, data_dir, strict=False)
    except DataError as error:  # the spec itself could not be read
        return None, LoadReport(str(spec_or_preset), str(resolve_data_dir(data_dir)),
                                errors=(str(error),))


def dataset_counts(dataset: Dataset) -> dict[str, int]:
    counts = {"users": dataset.n_users, "items": dataset.n_items,
              "interactions": len(dataset.interactions)}
    if dataset.user_attributes is not None:
        counts["user_attribute_columns"] = len(dataset.user_attributes.columns)
    attrs = dataset.item_attributes
    if attrs is not None and attrs.attributes is not None:
        counts["item_attribute_columns"] = len(attrs.attributes.columns)
    if attrs is not None and attrs.tags is not None:
        counts["tag_assignments"] = len(attrs.tags)
        counts["tags"] = len(attrs.tags.vocabulary)
    if dataset.item_text is not None:
        counts["item_text_fields"] = len(dataset.item_text.fields)
    if dataset.social is not None:
        counts["social_edges"] = len(dataset.social)
    if dataset.kg is not None:
        counts.update(kg_triples=len(dataset.kg), kg_entities=len(dataset.kg.entities),
                      kg_relations=len(dataset.kg.relations), kg_links=len(dataset.kg.link_item))
    if dataset.reviews is not None:
        counts["reviews"] = len(dataset.reviews)
    return counts


def _run(spec_or_preset, data_dir, strict: bool) -> tuple[Dataset | None, LoadReport]:
    start = time.perf_counter()
    spec, spec_dir = resolve_spec(spec_or_preset)
    if spec is None:
        from fusionrec.data.synthetic import generate

        dataset = generate()
        return dataset, LoadReport(SYNTHETIC, "(generated)", (), dataset_counts(dataset),
                                   seconds=time.perf_counter() - start)
    root = data_root(spec, spec_dir, data_dir)
    loader = _Loader(spec, root, strict)
    dataset = loader.run()
    counts = dataset_counts(dataset) if dataset is not None and not loader.errors else {}
    report = LoadReport(spec.name, str(root), tuple(loader.reports), counts,
                        tuple(loader.errors), time.perf_counter() - start)
    return (dataset if report.usable else None), report


class _Loader:
    """Reads each file once (cached by its :class:`TableSpec`), records one report per file."""

    def __init__(self, spec: DatasetSpec, root: Path, strict: bool) -> None:
        self.spec, self.root, self.strict = spec, root, strict
        self.tables: dict[TableSpec, Table] = {}
        self.reports: list[FileReport] = []
        self.errors: list[str] = []

    # -- the ctx protocol used by fusionrec.data.sources ---------------------------------------
    def rows(self, table: TableSpec, source: str, bad_rows: str = "error") -> Rows:
        if table not in self.tables:
            self.tables[table] = read_table(table, self.root)
        return Rows(self.tables[table], source, bad_rows)

    def finish(self, rows: Rows, note: str = "") -> None:
        self.reports.append(rows.report(note))

    # -- helpers -------------------------------------------------------------------------------
    def _attempt(self, fn, *args):
        try:
            return fn(*args)
        except DataError as error:
            if self.strict:
                raise
            self.errors.append(str(error))
            return None

    def _present(self, source: str, *tables: TableSpec) -> bool:
        """False (and a note in the report) when an optional file of ``source`` is missing."""
        for table in tables:
            if table.optional and not locate(table, self.root).is_file():
                self.reports.append(FileReport(source, table.file, 0, 0,
                                               note="optional file not found; source skipped"))
                return False
        return True

    def _vocabulary(self, which: str, raws: dict[str, S.Raw | None]) -> Vocabulary:
        vocab = self.spec.vocabulary
        explicit = getattr(vocab, which)
        values: list = []
        if explicit is not None:
            ids = self._attempt(S.read_vocabulary_file, self, explicit, f"vocabulary.{which}")
            values.extend(ids[0] if ids is not None else ())
        for source in getattr(vocab, f"{which}_from"):
            raw = raws.get(source)
            if raw is None:
                continue
            if source == "social":
                values.extend(S.interleave(raw.kept("source"), raw.kept("target")))
            elif source in ("interactions", "reviews"):
                values.extend(raw.kept("user" if which == "users" else "item"))
            elif source == "kg":
                values.extend(raw.kept("item"))
            else:
                values.extend(raw.kept("id"))
        return Vocabulary.from_values(values)

    def run(self) -> Dataset | None:
        spec = self.spec
        inter = self._attempt(S.read_interactions, self, spec.interactions)
        if inter is None:
            return None
        kg = spec.kg
        links = None
        if kg is not None and self._present("kg", kg.triples.table, kg.links.table):
            links = self._attempt(S.read_links, self, kg.links)
            if links is not None and kg.restrict_items:
                linked = pd.Series(inter.cols["item"]).isin(set(links.kept("item"))).to_numpy()
                inter.rows.drop(~linked, "item not linked to the KG")
        raws: dict[str, S.Raw | None] = {"interactions": inter, "kg": links}
        for key, role in (("user_attributes", "user"), ("item_attributes", "item"),
                          ("item_text", "item")):
            sub = getattr(spec, key)
            if sub is not None and sub.table is not None and self._present(key, sub.table):
                raws[key] = self._attempt(S.read_keyed, self, sub, key, role)
        if spec.social is not None and self._present("social", spec.social.table):
            raws["social"] = self._attempt(S.read_social, self, spec.social)
        if spec.reviews is not None and self._present("reviews", spec.reviews.table):
            raws["reviews"] = self._attempt(S.read_reviews, self, spec.reviews)
        users = self._vocabulary("users", raws)
        items = self._vocabulary("items", raws)
        interactions = self._attempt(S.build_interactions, self, spec.interactions, inter, users,
                                     items)
        parts: dict = {}
        for key in ("user_attributes", "item_attributes"):
            if raws.get(key) is not None:
                parts[key] = self._attempt(S.build_attributes, self, getattr(spec, key),
                                           raws[key], users if key == "user_attributes" else items)
        tags = None
        if spec.item_attributes is not None and spec.item_attributes.tags is not None:
            tag_spec = spec.item_attributes.tags
            if self._present("item_attributes.tags", tag_spec.table):
                tags = self._attempt(S.build_tags, self, tag_spec, users, items)
        if parts.get("item_attributes") is not None or tags is not None:
            parts["item_attributes"] = ItemAttributes(parts.get("item_attributes"), tags)
        if raws.get("item_text") is not None:
            parts["item_text"] = self._attempt(S.build_item_text, self, spec.item_text,
                                               raws["item_text"], items)
        if raws.get("social") is not None:
            parts["social"] = self._attempt(S.build_social, self, spec.social, raws["social"],
                                            users)
        if links is not None:
            parts["kg"] = self._attempt(S.build_kg, self, kg, links, items,
                                        parts.get("item_text"))
        if raws.get("reviews") is not None:
            parts["reviews"] = self._attempt(S.build_reviews, self, spec.reviews, raws["reviews"],
                                             users, items)
        if interactions is None or self.errors:
            return None
        return Dataset(spec.name, users, items, interactions,
                       **{k: v for k, v in parts.items() if v is not None})
