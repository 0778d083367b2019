"""``model.params`` dataclasses of the link models (light: validating a config imports no
torch). Registered in :data:`fusionrec.models.registry.PARAMS`."""

from __future__ import annotations

from dataclasses import dataclass

from fusionrec.models.baselines.lightgcn import LightGCNConfig
from fusionrec.models.fusion.config import FusionConfig
from fusionrec.models.params import at_least, one_of

#: the pair priors ``fusion-links`` can add to its own score, by name
PRIORS = ("adamic-adar", "common-neighbours")


@dataclass(frozen=True)
class NeighbourConfig:
    """``common-neighbours``, ``adamic-adar`` and ``friend-degree`` take no parameters."""


@dataclass(frozen=True)
class LightGCNLinksConfig(LightGCNConfig):
    """``model.params`` of ``lightgcn-links``: LightGCN's, with the friend graph on."""

    social: bool = True


@dataclass(frozen=True)
class FusionLinksConfig(FusionConfig):
    """``model.params`` of ``fusion-links``: the fusion model's plus the link settings."""

    folds: int = 4               # edge-hiding parts of the training friendships (1: none)
    prior: str = "adamic-adar"   # neighbourhood prior added to the pair score, or none

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.folds, bool) or not isinstance(self.folds, int):
            at_least("fusion-links", "folds", self.folds, 1)  # raises: not an int
        at_least("fusion-links", "folds", self.folds, 1)
        one_of("fusion-links", "prior", self.prior, ("none", *PRIORS))
