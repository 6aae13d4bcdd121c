"""Deng & Gu 2021's CIFARNet with its voting output layer."""

from dataclasses import dataclass
from typing import Optional

from snnx.models.registry import VotingModelParams, register_model
from snnx.registry import param

# The voting layer's outputs per class (Deng & Gu 2021, App. A.1, after Wu et al. 2019): the paper gives none;
# 10 as in Wu et al.'s released code.
VOTES = 10


@dataclass
class CifarNetParams(VotingModelParams):
    votes: Optional[int] = param(VOTES, "outputs per class of the voting layer, averaged (1 = a plain Linear)",
                                 ge=1, integer=True)


register_model("cifarnet", builder="snnx.models.cifarnet:cifarnet", min_image_size=4, votes=VOTES,
               params=CifarNetParams,
               doc="128C3-256C3-AP2-512C3-AP2-1024C3-512C3-1024FC-512FC-Voting (Deng & Gu 2021, App. A.1)")
