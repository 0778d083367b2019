"""Hyper-parameters of the fusion recommender: one frozen dataclass, validated on creation.

Lab notes (the measured CPU cost of each ``lm_mode``): benchmarks/results/NOTES.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from fusionrec.models.params import ParamsError, names_among

#: Sources the fusion model has an encoder for, in the order their vectors are stacked.
FUSABLE_SOURCES: tuple[str, ...] = (
    "interactions", "user_attributes", "item_attributes", "item_text", "social", "kg")
FUSIONS = ("concat", "weighted", "gated")
HEADS = ("ctr", "retrieval")
RETRIEVAL_LOSSES = ("bpr", "softmax", "full_softmax")
NEGATIVE_POOLS = ("all", "trained")


def _fail(key: str, message: str, value: Any) -> None:
    raise ParamsError(f"fusion params: {key} {message}, got {value!r}")


@dataclass(frozen=True)
class FusionConfig:
    """Architecture of :class:`~fusionrec.models.fusion.recommender.FusionRecommender`.

    - ``sources``: ``"all"`` (every fusable source the split's features have) or a list; a
      listed source the data lacks is an error.
    - ``fusion``: ``concat`` | ``weighted`` (learned softmax weights) | ``gated`` (per-row
      attention gate); ``source_dropout``: probability of dropping a whole source per row in
      training; ``item_id_dropout``: that probability for the items' ``interactions`` (ID)
      source alone (None: ``source_dropout``). Raised towards 1 it trains the item side as
      the content-only tower a cold item gets (DropoutNet), at some cost to warm items.
    - ``heads``: ``"auto"`` (CTR + retrieval for CTR splits, retrieval for top-K) or a list;
      ``retrieval_weight`` scales the retrieval loss against the CTR loss (multi-task).
    - ``retrieval_loss``: ``bpr`` (``n_negatives`` per positive, none of the user's training
      items) or ``softmax`` (sampled softmax at ``temperature`` over one pool of
      ``n_negatives`` uniform items shared by the batch) or ``full_softmax`` (cross-entropy
      over every item at ``temperature``; ``n_negatives`` is unused: every item is scored,
      which costs one ``(B, n_items)`` product per step and suits catalogues up to ~10^5; on
      Last.FM, 17,632 items, batch 1024, 1 thread: ~0.9 s a step, ~70 s an epoch, against
      ~15 s for the 1,024-item sampled softmax, and it converges in fewer epochs to a better
      model: valid NDCG@10 0.185 vs 0.177).
    - ``negative_pool``: the items the retrieval and CTR losses may use as negatives: ``all``
      or ``trained`` (only items with at least one training interaction). Under a protocol
      that holds items out of training to score them later from content (cold-items), use
      ``trained``: with ``all`` every step pushes the held-out items' text, attribute and KG
      vectors away from every user. ``all`` is the default because on warm protocols an item
      nobody touched in training is rarely a test positive either, and the recorded warm
      results were trained that way.
    - ``cross_source``: a learned ``(D, D)`` map on the fused user vector, starting at the
      identity, so the score is ``u^T (I + W) i``: with ``concat`` any user source can meet
      any item source (a user's ID vector and an item's text) instead of each source scoring
      only against itself.
    - ``cosine_scale``: 0 (off) or ``s > 0``: fused user and item vectors are L2-normalised
      and the score is ``s * cos(u, i) + b_i`` (``s`` is an inverse temperature; keep
      ``temperature: 1`` then), so a vector's length cannot stand in for popularity, which the
      item bias models.
    - ``layers``: LightGCN layers for the interaction and social graphs; ``kg_layers`` and
      ``kg_neighbours``: rounds and sampled neighbours of the KG attention.
    - ``hide_batch_edges``: in training, propagate over the training graph minus the edges of
      the batch's positives, so training pairs look like held-out pairs (which never have their
      own edge); without it the CTR head learns "edge present" and is overconfident on test.
    - ``mask_cold_ids``: the ``interactions`` source counts as missing for users and items
      with no training interaction (their ID vectors are untrained noise; see ``IDEncoder``).
    - ``text_hidden``: hidden width of the LM adapter (0: one linear map, cheaper on many items);
      ``text_user``: a user's text vector is the ``profile`` (mean of their training items'
      text vectors), the adapted LM embedding of the user's own text (``lm``), or ``both``.
    - ``encoder``: the LM encoder settings (``EncoderConfig`` fields) for ``item_text``.
    - ``lm_mode``: how much of that LM trains with the model: ``frozen`` (cached embeddings,
      only the adapter learns), ``top_k`` (the top ``lm_top_k`` transformer layers), ``lora``
      (rank ``lora_r``) or ``prefix`` (``prefix_tokens`` virtual tokens) via PEFT, ``full``.
      Outside ``frozen``, each step re-encodes with gradients only the texts of the items (and,
      with ``text_user`` ``lm``/``both``, users) the batch scores, at most ``lm_batch_texts``
      per side (0: all of them); every other row reads a cached table that is re-encoded after
      each epoch (before validation, scoring and saving). LM weights train at ``lm_lr``,
      the rest at ``trainer.lr``; ``lm_max_length`` caps the LM's tokens per text (default:
      ``encoder.max_length``; the cached table is built at the same length).

    CPU cost of one epoch per ``lm_mode``: benchmarks/results/NOTES.md.
    """

    embedding_dim: int = 64  # width of every source's vectors and of the fused vector
    sources: str | tuple[str, ...] = "all"
    fusion: str = "concat"
    source_dropout: float = 0.1
    item_id_dropout: float | None = None
    heads: str | tuple[str, ...] = "auto"
    retrieval_loss: str = "bpr"
    retrieval_weight: float = 1.0
    n_negatives: int = 1  # negatives per positive (bpr) or shared pool size (softmax)
    negative_pool: str = "all"
    temperature: float = 0.2  # softmax temperature of the retrieval loss
    layers: int = 2
    social_layers: int = 2  # LightGCN layers over the social graph
    kg_layers: int = 1
    kg_neighbours: int = 8
    hidden: tuple[int, ...] = (128, 64)  # widths of the MLP layers of the CTR head
    text_hidden: int = 128
    text_user: str = "profile"
    mlp_dropout: float = 0.1  # dropout between the MLP layers
    init_std: float = 0.1  # standard deviation of the ID tables' normal initialisation
    mask_cold_ids: bool = False
    cross_source: bool = False
    cosine_scale: float = 0.0
    hide_batch_edges: bool = True
    encoder: Mapping[str, Any] | None = field(default=None)
    lm_mode: str = "frozen"
    lm_top_k: int = 2
    lm_lr: float = 5e-5
    lora_r: int = 8
    prefix_tokens: int = 10
    lm_max_length: int | None = None
    lm_batch_texts: int = 64

    def __post_init__(self) -> None:
        if self.embedding_dim < 1:
            _fail("embedding_dim", "must be >= 1", self.embedding_dim)
        if self.sources != "all":
            if isinstance(self.sources, str):
                object.__setattr__(self, "sources", (self.sources,))
            sources = tuple(self.sources)
            object.__setattr__(self, "sources", sources)
            names_among("fusion", "sources", sources, FUSABLE_SOURCES)
            if not sources or len(set(sources)) != len(sources):
                _fail("sources", f'must be "all" or distinct names among {FUSABLE_SOURCES}',
                      self.sources)
        if self.fusion not in FUSIONS:
            _fail("fusion", f"must be one of {FUSIONS}", self.fusion)
        if not 0 <= self.source_dropout < 1:
            _fail("source_dropout", "must be in [0, 1)", self.source_dropout)
        if self.item_id_dropout is not None and not 0 <= self.item_id_dropout <= 1:
            _fail("item_id_dropout", "must be null or in [0, 1]", self.item_id_dropout)
        if self.heads != "auto":
            heads = (self.heads,) if isinstance(self.heads, str) else tuple(self.heads)
            object.__setattr__(self, "heads", heads)
            if not heads or any(h not in HEADS for h in heads):
                _fail("heads", f'must be "auto" or a list among {HEADS}', self.heads)
        if self.retrieval_loss not in RETRIEVAL_LOSSES:
            _fail("retrieval_loss", f"must be one of {RETRIEVAL_LOSSES}", self.retrieval_loss)
        if self.retrieval_weight < 0:
            _fail("retrieval_weight", "must be >= 0", self.retrieval_weight)
        if self.negative_pool not in NEGATIVE_POOLS:
            _fail("negative_pool", f"must be one of {NEGATIVE_POOLS}", self.negative_pool)
        if self.n_negatives < 1:
            _fail("n_negatives", "must be >= 1", self.n_negatives)
        if self.cosine_scale < 0:
            _fail("cosine_scale", "must be >= 0 (0: plain dot product)", self.cosine_scale)
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
        self._check_lm()

    def _check_lm(self) -> None:
        from fusionrec.encoders.tuning import LM_MODES, positive_int

        if self.lm_mode not in LM_MODES:
            _fail("lm_mode", f"must be one of {LM_MODES}", self.lm_mode)
        for key in ("lm_top_k", "lora_r", "prefix_tokens"):
            if not positive_int(getattr(self, key)):
                _fail(key, "must be a positive int", getattr(self, key))
        if not isinstance(self.lm_batch_texts, int) or self.lm_batch_texts < 0:
            _fail("lm_batch_texts", "must be an int >= 0 (0: every text the batch needs)",
                  self.lm_batch_texts)
        if self.lm_max_length is not None and (not isinstance(self.lm_max_length, int)
                                               or self.lm_max_length < 8):
            _fail("lm_max_length", "must be null (encoder.max_length) or an int >= 8",
                  self.lm_max_length)
        if not self.lm_lr > 0:
            _fail("lm_lr", "must be > 0", self.lm_lr)
        if self.lm_mode == "frozen":
            return
        if self.sources != "all" and "item_text" not in self.sources:
            _fail("lm_mode", "trains the LM of the item_text source, which sources leaves out",
                  self.lm_mode)
        model = self.text_encoder_config().model.strip()
        if model == "hashing" or model.startswith("hashing:"):
            _fail("lm_mode", f"needs a Hugging Face encoder.model to fine-tune, not {model!r}",
                  self.lm_mode)

    def text_encoder_config(self):
        """The ``EncoderConfig`` of ``item_text`` (``lm_max_length`` applied outside frozen)."""
        from fusionrec.encoders.config import EncoderConfig

        config = EncoderConfig.from_dict(self.encoder)
        if self.lm_mode != "frozen" and self.lm_max_length is not None:
            config = EncoderConfig.from_dict({**config.to_dict(),
                                              "max_length": self.lm_max_length})
        return config

    def lm_tuning(self):
        """The :class:`~fusionrec.encoders.trainable.LMTuning` of ``lm_mode``."""
        from fusionrec.encoders.tuning import LMTuning

        return LMTuning(self.lm_mode, self.lm_top_k, self.lora_r, 2 * self.lora_r, 0.1,
                        self.prefix_tokens)

    def item_dropout(self, sources: tuple[str, ...]) -> tuple[float, ...] | None:
        """Per-source dropout of the item side for ``sources`` (None: ``source_dropout``)."""
        if self.item_id_dropout is None:
            return None
        return tuple(self.item_id_dropout if s == "interactions" else self.source_dropout
                     for s in sources)

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
