"""Two-stage CS-QCFS (Yang et al. 2025, Alg. 1), stage 2: layer-wise QCFS → channel-wise CS-QCFS."""

from __future__ import annotations

from torch import nn

from snnx.errors import ConfigError

from .modules import CSQCFS, QCFS


def _channelwise_from(q: QCFS, softplus: bool, name: str, channelwise: bool = True,
                      grad_window: str | None = None) -> CSQCFS:
    if q.num_channels is None:
        raise ValueError(
            f"QCFS module {name or '<root>'} does not know its channel count; "
            "build it with QCFS(..., num_channels=C) (make_act_factory does)"
        )
    lam = q.threshold.detach()
    if softplus and not bool(lam > 0):
        raise ConfigError(
            f"layer {name or '<root>'} has trained λ = {lam.item():g} ≤ 0, "
            "which softplus cannot represent.",
            key="act.softplus",
            fix="Set act.softplus=false for stage 2, or retrain stage 1.",
        )
    new = CSQCFS(
        q.num_channels,
        q.L,
        init_threshold=lam,  # p takes λ's dtype and device
        shift=q.shift,
        channelwise=channelwise,
        softplus=softplus,
        grad_window=q.grad_window if grad_window is None else grad_window,
    )
    new.threshold_param.requires_grad_(q.threshold.requires_grad)
    new.train(q.training)
    return new


def to_channelwise(model: nn.Module, *, softplus: bool = True, channelwise: bool = True,
                   grad_window: str | None = None) -> nn.Module:
    """Replace every QCFS in ``model`` (recursively, in place) by a channel-wise CS-QCFS.

    Each new module has the QCFS's L and φ and per-channel thresholds all
    equal to the layer's trained λ (``softplus(p_c) = λ`` — bit for bit where
    a float p allows it, see :func:`inverse_softplus`), so the model's outputs
    are unchanged right after the swap. A QCFS instance registered at several
    places is replaced by one shared CS-QCFS. Returns ``model`` (or the new
    module if ``model`` itself is a QCFS). ``channelwise=False`` keeps one
    threshold per layer (the S-QCFS ablation's stage 2: λ re-expressed as
    softplus(p)). ``grad_window``: the new modules' gradient window (None:
    each QCFS's own). Build the optimizer after the swap:
    the thresholds are new parameters (``threshold_param``).
    """
    if isinstance(model, QCFS):
        return _channelwise_from(model, softplus, "", channelwise, grad_window)
    replaced: dict[int, CSQCFS] = {}
    for parent_name, parent in list(model.named_modules(remove_duplicate=False)):
        for child_name, child in list(parent._modules.items()):  # not named_children: it drops repeats
            if isinstance(child, QCFS):
                full = f"{parent_name}.{child_name}" if parent_name else child_name
                if id(child) not in replaced:
                    replaced[id(child)] = _channelwise_from(child, softplus, full, channelwise, grad_window)
                setattr(parent, child_name, replaced[id(child)])
    return model


__all__ = ["to_channelwise"]
