"""FusionRec: recommenders that fuse many data sources through a pretrained language model.

Kept light on purpose: heavy frameworks (torch, transformers, pandas) are imported where used.
"""

__version__ = "0.1.0"
