"""``build_encoder(config)``: the encoder an :class:`EncoderConfig` names."""

from __future__ import annotations

from fusionrec.encoders.base import EncoderError, TextEncoder
from fusionrec.encoders.config import EncoderConfig


def build_encoder(config: EncoderConfig) -> TextEncoder:
    """``hashing[:DIM]`` builds the test-only hashing encoder; anything else is a Hugging Face
    model resolved offline (bundled MiniLM, a folder, or a cached hub name)."""
    name = config.model.strip()
    if name == "hashing" or name.startswith("hashing:"):
        from fusionrec.encoders.hashing import HashingEncoder

        _, _, dim = name.partition(":")
        if dim and not dim.isdigit():
            raise EncoderError(f"encoder.model {name!r}: expected hashing:DIM with DIM an int")
        return HashingEncoder(int(dim) if dim else 64, normalize=config.normalize)
    from fusionrec.encoders.hf import HFEncoder
    from fusionrec.encoders.resolve import resolve_model

    return HFEncoder(resolve_model(name), config)
