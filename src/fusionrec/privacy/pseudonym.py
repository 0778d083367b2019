"""Keyed pseudonyms for user ids: ``p`` + the first 20 hex digits of HMAC-SHA256(key, raw id).

Applied once, right after loading (``data.pseudonymize: true``), so every artefact downstream
(vocabularies, split manifests, embedding-cache texts, logs, the service's ids) only ever holds
pseudonyms. The key never enters a run folder: it comes from ``$FUSIONREC_PSEUDONYM_KEY``, a
file named by ``$FUSIONREC_PSEUDONYM_KEY_FILE``, or a file named by ``data.pseudonym_key_file``
(a path, not the key, because ``config.yaml`` is copied into the run). Only the holder of the
key can map pseudonyms back, by recomputing the HMAC of candidate raw ids (:meth:`reidentify`).

80 bits of HMAC make a collision among a billion users about a one-in-a-million event; ingest
still checks and refuses one rather than silently merging two people.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from fusionrec.data.schema import Attributes, Dataset, Vocabulary
from fusionrec.errors import FusionRecError

log = logging.getLogger(__name__)

KEY_ENV = "FUSIONREC_PSEUDONYM_KEY"
KEY_FILE_ENV = "FUSIONREC_PSEUDONYM_KEY_FILE"
PREFIX = "p"
HEX_DIGITS = 20
MIN_KEY_BYTES = 16


class PseudonymError(FusionRecError, ValueError):
    """No usable key, or a key that does not fit the run it is used with."""


@dataclass(frozen=True)
class Pseudonymiser:
    """HMAC-SHA256 pseudonyms under one secret key (never printed: ``repr=False``)."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) < MIN_KEY_BYTES:
            raise PseudonymError(f"the pseudonym key must have at least {MIN_KEY_BYTES} bytes")

    @property
    def key_id(self) -> str:
        """A public name of the key (an HMAC of a constant): tells a wrong key from an unknown
        id without revealing anything about the key."""
        return hmac.new(self.key, b"fusionrec-pseudonym-key-id", hashlib.sha256).hexdigest()[:16]

    def pseudonym(self, raw: object) -> str:
        digest = hmac.new(self.key, str(raw).encode("utf-8"), hashlib.sha256).hexdigest()
        return PREFIX + digest[:HEX_DIGITS]

    def vocabulary(self, users: Vocabulary) -> Vocabulary:
        """The same users, in the same order, under their pseudonyms."""
        ids = tuple(self.pseudonym(raw) for raw in users.ids)
        if len(set(ids)) != len(ids):
            raise PseudonymError("two user ids share a pseudonym (an HMAC collision); "
                                 "use another key")
        return Vocabulary(ids)

    def dataset(self, dataset: Dataset) -> Dataset:
        """``dataset`` with pseudonymous user ids. Every table refers to users by index, so only
        the vocabulary changes; user attribute columns named like identifiers (e-mail, name,
        zip, ...) are dropped too: kept, they would re-identify the pseudonyms."""
        from fusionrec.text.scrub import is_pii_column

        changes: dict = {"users": self.vocabulary(dataset.users)}
        attrs = dataset.user_attributes
        if attrs is not None:
            dropped = [name for name in attrs.columns if is_pii_column(name)]
            if dropped:
                log.info("pseudonymise: dropping identifying user attribute column(s) %s",
                         dropped)
                kept = {n: c for n, c in attrs.columns.items() if n not in dropped}
                changes["user_attributes"] = Attributes(kept) if kept else None
        return dataset.replace(**changes)

    def reidentify(self, pseudonyms: Iterable[str], candidates: Iterable[object]
                   ) -> dict[str, str]:
        """``{pseudonym: raw id}`` for every candidate raw id whose pseudonym is among
        ``pseudonyms`` (pseudonyms no candidate explains are left out)."""
        wanted = set(pseudonyms)
        found: dict[str, str] = {}
        for raw in candidates:
            pseudonym = self.pseudonym(raw)
            if pseudonym in wanted:
                found[pseudonym] = str(raw)
        return found


def resolve_key(key_file: str | os.PathLike | None = None,
                environ: Mapping[str, str] | None = None) -> bytes:
    """The key: ``key_file`` (config) > ``$FUSIONREC_PSEUDONYM_KEY`` >
    ``$FUSIONREC_PSEUDONYM_KEY_FILE``. Surrounding whitespace of a key file is ignored."""
    environ = os.environ if environ is None else environ
    if key_file:
        return _read_key_file(key_file, "data.pseudonym_key_file")
    if environ.get(KEY_ENV):
        return environ[KEY_ENV].encode("utf-8")
    if environ.get(KEY_FILE_ENV):
        return _read_key_file(environ[KEY_FILE_ENV], KEY_FILE_ENV)
    raise PseudonymError(f"pseudonymisation needs a key: set {KEY_ENV} (or {KEY_FILE_ENV}, or "
                         "data.pseudonym_key_file in the run config)")


def _read_key_file(path: str | os.PathLike, where: str) -> bytes:
    try:
        key = Path(path).expanduser().read_bytes().strip()
    except OSError as error:
        raise PseudonymError(f"{where}: cannot read the pseudonym key file ({error})") from None
    if not key:
        raise PseudonymError(f"{where}: the pseudonym key file {path} is empty")
    return key


def pseudonymiser(key_file: str | os.PathLike | None = None,
                  environ: Mapping[str, str] | None = None) -> Pseudonymiser:
    return Pseudonymiser(resolve_key(key_file, environ))


def check_key(key_id: str, manifest: Mapping) -> None:
    """Refuse a key (by its :attr:`~Pseudonymiser.key_id`) other than the one a run was
    pseudonymised with: its pseudonyms would match none of the run's."""
    expected = (manifest.get("privacy") or {}).get("pseudonym_key_id")
    if expected and expected != key_id:
        raise PseudonymError(f"the pseudonym key (id {key_id}) is not the one this run was "
                             f"pseudonymised with (id {expected})")
