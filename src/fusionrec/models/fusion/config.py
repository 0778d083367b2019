"""Hyper-parameters of the fusion recommender: one frozen dataclass, validated on creation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

#: Sources the fusion model has an encoder for, in the order their vectors are stacked.
FUSABLE_SOURCES: tuple[str, ...] = (
    "interactions", "user_attributes", "item_attributes", "item_text", "social", "kg")
FUSIONS = ("concat", "weighted", "gated")
HEADS = ("ctr", "retrieval")
RETRIEVAL_LOSSES = ("bpr", "softmax")


def _fail(key: str, message: str, value: Any) -> None:
    raise ValueError(f"fusion params: {key} {message}, got {value!r}")


@dataclass(frozen=True)
class FusionConfig:
    """Architecture of :class:`~fusionrec.models.fusion.recommender.FusionRecommender`.

    - ``sources``: ``"all"`` (every fusable source the split's features have) or a list; a
      listed source the data lacks is an error.
    - ``fusion``: ``concat`` | ``weighted`` (learned softmax weights) | ``gated`` (per-row
      attention gate); ``source_dropout``: probability of dropping a whole source per row in
      training.
    - ``heads``: ``"auto"`` (CTR + retrieval for CTR splits, retrieval for top-K) or a list;
      ``retrieval_weight`` scales the retrieval loss against the CTR loss (multi-task).
    - ``retrieval_loss``: ``bpr`` (``n_negatives`` per positive, none of the user's training
      items) or ``softmax`` (sampled softmax at ``temperature`` over one pool of
      ``n_negatives`` uniform items shared by the batch).
    - ``layers``: LightGCN layers for the interaction and social graphs; ``kg_layers`` and
      ``kg_neighbours``: rounds and sampled neighbours of the KG attention.
    - ``hide_batch_edges``: in training, propagate over the training graph minus the edges of
      the batch's positives, so training pairs look like held-out pairs (which never have their
      own edge); without it the CTR head learns "edge present" and is overconfident on test.
    - ``text_hidden``: hidden width of the LM adapter (0: one linear map, cheaper on many items);
      ``text_user``: a user's text vector is the ``profile`` (mean of their training items'
      text vectors), the adapted LM embedding of the user's own text (``lm``), or ``both``.
    - ``encoder``: the LM encoder settings (``EncoderConfig`` fields) for ``item_text``.
    """

    embedding_dim: int = 64
    sources: str | tuple[str, ...] = "all"
    fusion: str = "concat"
    source_dropout: float = 0.1
    heads: str | tuple[str, ...] = "auto"
    retrieval_loss: str = "bpr"
    retrieval_weight: float = 1.0
    n_negatives: int = 1
    temperature: float = 0.2
    layers: int = 2
    social_layers: int = 2
    kg_layers: int = 1
    kg_neighbours: int = 8
    hidden: tuple[int, ...] = (128, 64)
    text_hidden: int = 128
    text_user: str = "profile"
    mlp_dropout: float = 0.1
    init_std: float = 0.1
    hide_batch_edges: bool = True
    encoder: Mapping[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.embedding_dim < 1:
            _fail("embedding_dim", "must be >= 1", self.embedding_dim)
        if self.sources != "all":
            if isinstance(self.sources, str):
                object.__setattr__(self, "sources", (self.sources,))
            sources = tuple(self.sources)
            object.__setattr__(self, "sources", sources)
            unknown = [s for s in sources if s not in FUSABLE_SOURCES]
            if unknown or not sources or len(set(sources)) != len(sources):
                _fail("sources", f'must be "all" or distinct names among {FUSABLE_SOURCES}',
                      self.sources)
        if self.fusion not in FUSIONS:
            _fail("fusion", f"must be one of {FUSIONS}", self.fusion)
        if not 0 <= self.source_dropout < 1:
            _fail("source_dropout", "must be in [0, 1)", self.source_dropout)
        if self.heads != "auto":
            heads = (self.heads,) if isinstance(self.heads, str) else tuple(self.heads)
            object.__setattr__(self, "heads", heads)
            if not heads or any(h not in HEADS for h in heads):
                _fail("heads", f'must be "auto" or a list among {HEADS}', self.heads)
        if self.retrieval_loss not in RETRIEVAL_LOSSES:
            _fail("retrieval_loss", f"must be one of {RETRIEVAL_LOSSES}", self.retrieval_loss)
        if self.retrieval_weight < 0:
            _fail("retrieval_weight", "must be >= 0", self.retrieval_weight)
        if self.n_negatives < 1:
            _fail("n_negatives", "must be >= 1", self.n_negatives)
        if self.temperature <= 0:
            _fail("temperature", "must be > 0", self.temperature)
        for key in ("layers", "social_layers", "kg_layers"):
            if getattr(self, key) < 0:
                _fail(key, "must be >= 0", getattr(self, key))
        if self.text_hidden < 0:
            _fail("text_hidden", "must be >= 0", self.text_hidden)
        if self.text_user not in ("profile", "lm", "both"):
            _fail("text_user", "must be profile, lm or both", self.text_user)
        if self.kg_neighbours < 1:
            _fail("kg_neighbours", "must be >= 1", self.kg_neighbours)
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if any(h < 1 for h in self.hidden):
            _fail("hidden", "must be positive layer widths", self.hidden)
        if not 0 <= self.mlp_dropout < 1:
            _fail("mlp_dropout", "must be in [0, 1)", self.mlp_dropout)
        if self.init_std <= 0:
            _fail("init_std", "must be > 0", self.init_std)
        if self.encoder is not None:
            object.__setattr__(self, "encoder", dict(self.encoder))

    def resolved_heads(self, task: str) -> tuple[str, ...]:
        if self.heads != "auto":
            return self.heads  # type: ignore[return-value]
        return ("ctr", "retrieval") if task == "ctr" else ("retrieval",)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (tuples become lists)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out
