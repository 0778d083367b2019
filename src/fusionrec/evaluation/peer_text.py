"""What a text-aware peer (cornac's CTR) gets beyond the split, and the cold-start rule for
peers.

* :func:`export_item_texts` writes every item's text, rendered from ``split.features`` by the
  same textualiser ``content-knn`` and the fusion model's text source use
  (:func:`~fusionrec.models.baselines.content_knn.item_texts`). ``split.features`` is already
  leak-free: on ``cold-items`` a cold item keeps only content that exists before anyone
  interacts with it (name, text fields, attributes, KG edges; no tags, reviews or counts), so
  the peer reads exactly what FusionRec's own text models read.
* :func:`check_peer_cold_start` applies FusionRec's refusal
  (:func:`~fusionrec.evaluation.cold.check_cold_start`) to a peer, from what the peer declares
  (:data:`~fusionrec.evaluation.peer_side.run_peer.COLD_START`): a collaborative peer on a
  cold-start split is refused before it trains, instead of ranking cold items at random.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from fusionrec.data.split import Split
from fusionrec.evaluation.peer_side.run_peer import COLD_START, TEXT_PEERS


def check_peer_cold_start(peer: str, split: Split) -> None:
    """Raise :class:`~fusionrec.data.split.ColdStartUnsupported` if ``peer`` cannot score the
    cold entities ``split`` asks for."""
    from fusionrec.evaluation.cold import check_cold_start

    declared = SimpleNamespace(name=peer, cold_start=frozenset(COLD_START.get(peer, ())))
    for part in ("valid", "test"):
        check_cold_start(declared, split, part)


def peer_sources(peer: str, features) -> tuple[str, ...]:
    """The sources ``peer`` reads (the report's sources column): the training interactions, and
    for a text-aware peer the item sources its texts are rendered from."""
    if peer not in TEXT_PEERS:
        return ("interactions",)
    from fusionrec.models.baselines.content_map import ITEM_TEXT_SOURCES

    return tuple(s for s in features.sources if s in ITEM_TEXT_SOURCES)


def export_item_texts(peer: str, split: Split, encoder_config, folder: str | Path
                      ) -> Path | None:
    """Write ``item_text.json`` into the peer's split folder when ``peer`` reads item text
    (``encoder_config``: the run's encoder section, whose ``max_length`` sets the token
    budget; the default encoder's when the run has none). Returns the file, or None."""
    if peer not in TEXT_PEERS:
        return None
    from fusionrec.encoders.config import EncoderConfig
    from fusionrec.evaluation.peer_side.exchange import write_item_texts
    from fusionrec.models.baselines.content_knn import item_texts

    features = split.features
    if features.item_text is None and features.item_attributes is None and features.kg is None:
        raise ValueError(f"{peer} needs item text (item_text, item_attributes or kg), but "
                         f"dataset {features.name!r} has none")
    texts, _ = item_texts(features, encoder_config or EncoderConfig())
    return write_item_texts(folder, texts)
