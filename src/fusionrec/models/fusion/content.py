"""A new item's per-source rows, computed as the fitted model computes them for an item that has
no training interaction (the ``cold-items`` case), so serving scores a posted item exactly as the
offline model scores a cold one.

The saved run keeps per-source tables, not the encoders; the two content encoders whose output
for a new row is a function of that row alone are kept too (:func:`content_weights`):

- ``item_text``: the adapter (LayerNorm + MLP) over the item's LM vector;
- ``item_attributes``: ``bag @ E + numeric @ W^T`` over the item's feature row.

Every other source gives an item without training interactions a fixed row: ``interactions``
is masked when the model masks cold IDs (``mask_cold_ids``; without it the offline row is the
item's own untrained embedding, which a new item lacks, so the source is left to the caller);
``user_attributes`` (the mean over the item's users) is empty; ``social`` propagates no edge
into the item, a zero vector the model keeps; ``kg`` has no link for a posted item.
"""

from __future__ import annotations

import numpy as np

#: Prefix of the content encoders' tensors in a saved fusion model.
PREFIX = "content."


def content_weights(module) -> dict[str, np.ndarray]:
    """The content encoders' weights of a built fusion ``module`` (empty for other sources)."""
    out: dict[str, np.ndarray] = {}
    encoders = module.encoders
    if "item_text" in encoders:
        for key, value in encoders["item_text"].adapter.state_dict().items():
            out[f"item_text.adapter.{key}"] = value.detach().cpu().numpy()
    if "item_attributes" in encoders:
        encoder = encoders["item_attributes"]
        if encoder.feature is not None:
            out["item_attributes.feature"] = encoder.feature.weight.detach().cpu().numpy()
        if encoder.numeric is not None:
            out["item_attributes.numeric"] = encoder.numeric.weight.detach().cpu().numpy()
    return out


def _text_row(weights: dict[str, np.ndarray], lm: np.ndarray, dim: int, hidden: int | None
              ) -> np.ndarray:
    import torch

    from fusionrec.models.fusion.text_encoder import TextAdapter

    state = {k[len("item_text.adapter."):]: torch.from_numpy(np.array(v))
             for k, v in weights.items() if k.startswith("item_text.adapter.")}
    adapter = TextAdapter(lm.shape[-1], dim, hidden)
    adapter.load_state_dict(state)
    adapter.eval()
    with torch.no_grad():
        return adapter(torch.from_numpy(np.asarray(lm, np.float32)[None]))[0].numpy()


def new_item_rows(weights: dict[str, np.ndarray], sources: tuple[str, ...], dim: int,
                  config, text_vector: np.ndarray | None, attribute_row: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(x (S, dim), mask (S,), open_sources)`` for an item with no training interaction.

    ``text_vector``: the LM vector of the item's text (as the textualiser renders it);
    ``attribute_row``: its item-attribute features followed by its standardised numeric block,
    in the training feature space (None or all zero: none). ``open_sources``: sources whose
    row the model cannot give (left zero and masked here; the caller may fill them).
    """
    x = np.zeros((len(sources), dim), np.float32)
    mask = np.zeros(len(sources), bool)
    open_sources = []
    for s, name in enumerate(sources):
        if name == "item_text":
            if text_vector is not None and np.any(text_vector):
                x[s] = _text_row(weights, text_vector, dim, config.text_hidden or None)
                mask[s] = True
        elif name == "item_attributes":
            if attribute_row is not None and np.any(attribute_row):
                feature = weights.get("item_attributes.feature", np.zeros((0, dim), np.float32))
                numeric = weights.get("item_attributes.numeric", np.zeros((dim, 0), np.float32))
                row = np.asarray(attribute_row, np.float64)
                if len(row) != len(feature) + numeric.shape[1]:
                    raise ValueError(f"attribute row has {len(row)} features; the model's "
                                     f"item attributes have {len(feature) + numeric.shape[1]}")
                x[s] = (row[:len(feature)] @ feature + row[len(feature):] @ numeric.T)
                mask[s] = True
        elif name == "social":
            mask[s] = True  # propagation brings nothing to an item without users: zero, kept
        elif name == "interactions" and not config.mask_cold_ids:
            open_sources.append(name)
    return x, mask, tuple(open_sources)
