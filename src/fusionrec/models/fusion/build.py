"""Choosing the sources to fuse and building one encoder per source from ``split.features``.

Everything here reads only ``split.features`` (training interactions plus leak-free side
sources), never the valid/test pairs.
"""

from __future__ import annotations

import logging

from torch import nn

from fusionrec.data.schema import Dataset
from fusionrec.models.fusion.config import FUSABLE_SOURCES, FusionConfig
from fusionrec.models.fusion.sources import TrainingGraph
from fusionrec.models.params import MissingSourceError

log = logging.getLogger(__name__)


def available_sources(features: Dataset) -> tuple[str, ...]:
    """Fusable sources ``features`` really has (a present but empty table does not count)."""
    have = ["interactions"]
    if features.user_attributes is not None and features.user_attributes.columns:
        have.append("user_attributes")
    item_attrs = features.item_attributes
    if item_attrs is not None and ((item_attrs.attributes is not None
                                    and item_attrs.attributes.columns)
                                   or (item_attrs.tags is not None and len(item_attrs.tags))):
        have.append("item_attributes")
    if features.item_text is not None and features.item_text.fields:
        have.append("item_text")
    if features.social is not None and len(features.social):
        have.append("social")
    if features.kg is not None and (len(features.kg) or len(features.kg.link_item)):
        have.append("kg")
    return tuple(name for name in FUSABLE_SOURCES if name in have)


def resolve_sources(config: FusionConfig, features: Dataset) -> tuple[str, ...]:
    """The sources to fuse, in canonical order; fails fast on a requested source the data
    lacks, and logs what ``"all"`` left out."""
    have = available_sources(features)
    if config.sources == "all":
        skipped = [s for s in features.sources if s not in have]
        if skipped:
            log.info("fusion: no encoder or no rows for source(s) %s; fusing %s",
                     skipped, list(have))
        return have
    missing = [s for s in config.sources if s not in have]
    if missing:
        raise MissingSourceError(f"fusion: source(s) {missing} were requested but dataset "
                                 f"{features.name!r} does not provide them (it has "
                                 f"{list(have)})")
    return tuple(s for s in FUSABLE_SOURCES if s in config.sources)


def cold_user_sources(sources: tuple[str, ...], config: FusionConfig) -> tuple[bool, ...]:
    """Per source, whether a user with no training interaction has it: attributes and friends
    do; IDs and the profiles of the user's items (item attributes, KG, ``item_text`` unless
    it is the user's own text alone, ``text_user: lm``) do not."""
    native = {"user_attributes", "social"} | ({"item_text"} if config.text_user == "lm"
                                               else set())
    return tuple(name in native for name in sources)


def load_text_features(features: Dataset, encoder):
    """LM embeddings of the split's users and items via the LM layer (cached there);
    ``encoder``: an ``EncoderConfig`` or a mapping of its fields."""
    from fusionrec.encoders.config import EncoderConfig
    from fusionrec.encoders.features import text_features

    config = encoder if isinstance(encoder, EncoderConfig) else EncoderConfig.from_dict(encoder)
    return text_features(features, config)


def load_live_lm(features: Dataset, config: FusionConfig):
    """The LM of ``item_text`` with ``config.lm_mode`` applied, and the token ids of the same
    texts the cached table encodes (same textualiser options, same truncation)."""
    from fusionrec.encoders.text_lm import TrainableTextLM
    from fusionrec.models.fusion.text_encoder import LiveLM
    from fusionrec.text.items import item_texts
    from fusionrec.text.options import TextOptions
    from fusionrec.text.users import user_texts

    encoder = config.text_encoder_config()
    lm = TrainableTextLM(encoder, config.lm_tuning(), label="fusion")
    options = TextOptions.for_max_length(encoder.max_length)
    user_ids = (lm.tokenise(user_texts(features, options)) if config.text_user != "profile"
                else None)
    return LiveLM(lm, lm.tokenise(item_texts(features, options)), user_ids,
                  config.lm_batch_texts)


def _attribute_encoder(features: Dataset, side: str, graph: TrainingGraph,
                       config: FusionConfig) -> nn.Module:
    from fusionrec.models.fusion.attribute_encoder import AttributeEncoder
    from fusionrec.models.fusion.attribute_features import drop_rare_features, feature_bags, \
        own_tag_bag

    extra = None
    if side == "item":
        attrs = features.item_attributes
        tags = attrs.tags if attrs.tags is not None and len(attrs.tags) else None
        native = feature_bags(attrs.attributes, tags, features.n_items)
        if tags is not None and tags.user is not None:
            extra = own_tag_bag(tags, features.n_users, native)
    else:
        native = feature_bags(features.user_attributes, None, features.n_users)
    if config.attribute_min_rows:
        counted = graph.item_has_users() if side == "item" else graph.user_has_items()
        native = drop_rare_features(native, counted.numpy(), config.attribute_min_rows)
    if not native.bag.shape[1] and not native.numeric.shape[1]:
        raise MissingSourceError(f"fusion: {side}_attributes of {features.name!r} has no "
                                 "usable column")
    return AttributeEncoder(native, side, graph, config.embedding_dim, extra, config.init_std)


def build_encoders(features: Dataset, sources: tuple[str, ...], config: FusionConfig,
                   graph: TrainingGraph, text=None, seed: int = 0,
                   live=None) -> dict[str, nn.Module]:
    """One encoder per source name over ``graph`` (built with social edges when ``social`` is
    among ``sources``); ``text`` is the ``TextFeatures`` for ``item_text``, ``live`` its
    fine-tuned LM (a ``LiveLM``, outside ``lm_mode: frozen``)."""
    from fusionrec.models.fusion.id_encoder import IDEncoder

    dim, std = config.embedding_dim, config.init_std
    encoders: dict[str, nn.Module] = {}
    for name in sources:
        if name == "interactions":
            encoders[name] = IDEncoder(graph.n_users, graph.n_items, dim, config.layers, std,
                                       graph if config.mask_cold_ids else None)
        elif name == "item_attributes":
            encoders[name] = _attribute_encoder(features, "item", graph, config)
        elif name == "user_attributes":
            encoders[name] = _attribute_encoder(features, "user", graph, config)
        elif name == "item_text":
            from fusionrec.models.fusion.text_encoder import TextEncoder

            if text is None:
                raise ValueError("fusion: item_text needs text features; none were given")
            user_text = getattr(text, "user", None) if config.text_user != "profile" else None
            if config.text_user != "profile" and user_text is None:
                raise ValueError(f"fusion: text_user={config.text_user!r} needs user text "
                                 "features, but the text features have none")
            encoders[name] = TextEncoder(text.item, user_text, graph, dim,
                                         config.text_hidden or None,
                                         with_profile=config.text_user != "lm", live=live)
        elif name == "social":
            from fusionrec.models.fusion.social_encoder import SocialEncoder

            encoders[name] = SocialEncoder(graph, dim, config.social_layers, std)
        elif name == "kg":
            from fusionrec.models.fusion.kg_encoder import KGEncoder

            encoders[name] = KGEncoder(features.kg, graph, dim, config.kg_layers,
                                       config.kg_neighbours, std, seed)
        else:  # resolve_sources only yields fusable names
            raise ValueError(f"fusion: no encoder for source {name!r}")
    return encoders
