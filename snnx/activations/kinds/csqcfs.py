"""``act=csqcfs`` and its two ablations ``cqcfs`` / ``sqcfs`` (Yang et al. 2025, Eqs. 16–18).

CS-QCFS gives each channel its own threshold λ_c = softplus(p_c); cqcfs keeps the channel-wise λ
without the softplus, sqcfs the softplus with one λ per layer (Table 4's ablation rows).
"""

from __future__ import annotations

from dataclasses import dataclass

from snnx.activations.kinds.qcfs import QCFSParams, check_flags
from snnx.activations.registry import ACTIVATIONS
from snnx.registry import param


@dataclass
class CSQCFSParams(QCFSParams):
    name: str = param("csqcfs", "the activation")
    init_threshold: float = param(4.0, "initial λ (Yang et al. 2025, §5.1 presets: 4; 8 for L=8)", gt=0,
                                  fix="Set act.init_threshold to the initial λ, e.g. 4.0.")
    channelwise: bool = param(True, "one λ per channel (Eq. 16)")
    softplus: bool = param(True, "λ = softplus(p) (Eq. 17)")


@dataclass
class CQCFSParams(CSQCFSParams):
    name: str = param("cqcfs", "the activation")
    softplus: bool = param(False, "λ = softplus(p): fixed false for cqcfs")


@dataclass
class SQCFSParams(CSQCFSParams):
    name: str = param("sqcfs", "the activation")
    channelwise: bool = param(False, "one λ per channel: fixed false for sqcfs")


def build(params, num_channels: int, *, first: bool):
    # torch loads only when a model is built: the activation registry is read while composing a config
    from snnx.activations.modules import CSQCFS

    return CSQCFS(num_channels, params["L"], params["init_threshold"], params["shift"],
                  channelwise=params["channelwise"], softplus=params["softplus"], grad_window=params["grad_window"])


# Eqs. 19–20's shifted window is the one the paper builds its ANN on.
_FAMILY = dict(check=check_flags, trains_threshold=True, grad_window="shifted")
ACTIVATIONS.register("csqcfs", params=CSQCFSParams, doc="CS-QCFS: channel-wise softplus thresholds (Yang et al. 2025)",
                     channelwise=(True, True), **_FAMILY)(build)
ACTIVATIONS.register("cqcfs", params=CQCFSParams, doc="CS-QCFS ablation: channel-wise λ, no softplus",
                     channelwise=(True, False), flags_fixed=True, **_FAMILY)(build)
ACTIVATIONS.register("sqcfs", params=SQCFSParams, doc="CS-QCFS ablation: softplus λ, one per layer",
                     channelwise=(False, True), flags_fixed=True, **_FAMILY)(build)
