"""``convert()``: the SNN of an ANN by the registered method's builder."""

from __future__ import annotations

from typing import Mapping

from torch import fx, nn

from snnx.convert.methods import METHODS
from snnx.finite import check_model, check_stats, check_thresholds


def method_params(method: str, convert: Mapping, *, strict: bool = True) -> dict:
    """``convert`` checked against ``method``'s declared keys, with every declared key filled.

    ``strict=False`` keeps only the keys the method declares: for a config section written for
    another method (e.g. a checkpointed config converted again with a different method).
    """
    values = dict(convert) if strict else METHODS.declared(method, convert)
    return METHODS.check({**values, "name": METHODS.get(method).name})


def convert(ann: nn.Module, *, method: str, stats: Mapping | None, convert: Mapping,
            seed: int = 0) -> tuple[fx.GraphModule, str]:
    """The SNN for ``ann`` (a graph module with neurons in place of activations) and its ``method`` label.

    ``seed`` drives stochastic neurons (MSAT's spike confidence).
    """
    entry = METHODS.get(method)
    params = method_params(method, convert, strict=False) if convert.get("name") not in (None, method) \
        else method_params(method, convert)
    check_model(ann)
    check_stats(stats)
    snn, label = entry.build(ann, stats=stats, params={**params, "seed": int(seed)})
    check_thresholds(snn)
    return snn, label
