"""`snnx doctor`: why a converted network falls short, layer by layer.

Pure analysis over what the simulation records (the per-layer rows of
layers.csv: firing rate, SIN ratio, clip and floor error), the neurons' thresholds,
the ANN's own activations on the same images and, for preset runs, the
preset's config. No Hydra here: the stage (``snnx.stages.doctor``) turns the
composed config into these arguments, and the end of ``simulate`` calls
:func:`diagnose` on the rows it already recorded.

Findings (each a row of doctor.csv per T it holds at — T, layer, the number, a suggested fix — and one
printed line per run with all those Ts: :func:`grouped`):

=======================  ==============================================================
dead_layer               no neuron of the layer fired by T (the first such layer per T:
                         where the signal dies; later silent layers are counted in it)
nearly_dead_layer        fewer than 0.1 % of the layer's (image, neuron) pairs fired by T
threshold_nonpositive    θ ≤ 0 in some channel (the neuron fires on no input at all)
threshold_nonfinite      θ is NaN or ±inf in some channel
threshold_above_range    θ > 10 × the 99.9th percentile of the ANN's positive activations
ann_layer_silent         the ANN's own activation is zero on every image (nothing to convert)
output_at_chance         SNN accuracy ≤ 1.5 × chance; names the first silent layer, else the
                         first layer whose error vs the ANN rises by ≥ 0.3 × its mean activation
ann_at_chance            the ANN itself is at chance (train it first)
clip_dominated           the layer's own conversion error is mostly clipping (input > θ)
floor_dominated          … mostly flooring (quantisation residual inside (0, θ])
sin_dominated            … mostly spikes of ANN-silent neurons (SIN)
unfolded_batchnorm       a BatchNorm is still in the SNN graph, downstream of a neuron
preset_departure         a key of an ``experiment=`` run that differs from the preset
=======================  ==============================================================

``examine`` measures the fraction of neurons that fired at least once with its own forward
hooks; on layers.csv rows alone (the end of ``simulate``) it is bounded by firing_rate · T
(every neuron that fired spiked at least once), so "nearly dead" is then a sure finding and
"dead" needs a firing rate of exactly 0.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import torch
from torch import fx, nn

from snnx.activations import CSQCFS, QCFS
from snnx.config import recipe, runtime_keys
from snnx.energy.rows import DEFAULT as DEFAULT_ENERGY, energy_rows, price_run
from snnx.neurons import Neuron
from snnx.progress import track
from snnx.sim import Simulator

# -- thresholds of the checks ------------------------------------------------------
NEARLY_DEAD_FRACTION = 1e-3  # < 0.1 % of neurons fired at least once by T
THETA_RANGE_FACTOR = 10.0  # θ above 10 × the layer's activation percentile
ACT_PERCENTILE = 99.9  # … of the ANN's positive activations on the same images
CHANCE_FACTOR = 1.5  # accuracy ≤ 1.5 × 100 / num_classes is "at chance"
ERROR_JUMP = 0.3  # relative error vs the ANN rising by this much from one layer to the next
LOCAL_ERROR_MIN = 0.2  # a layer's own (clip + floor + SIN) error ≥ 20 % of its mean ANN activation …
MIN_ACC_GAP = 1.0  # … reported only when the SNN is ≥ 1 point below the ANN at that T
DOMINANT_SHARE = 0.5  # one source is "dominant" when it is ≥ half of the layer's own error
MAX_CAUSE_LAYERS = 3  # error-source findings per T: the layers with the largest own error
# The percentile is taken over at most this many positive values per layer (seeded subsample).
MAX_PERCENTILE_SAMPLES = 1 << 22

SEVERITIES = ("error", "warning", "note")
COLUMNS = ["T", "layer", "finding", "value", "severity", "message", "suggestion"]

# Besides the keys that say where or how a run goes (snnx.config.runtime_keys), the recipe a run is compared
# with its preset on leaves out which stage and seed ran, which ANN file was named, and which T are read.
NOT_RECIPE_KEYS = ("stage", "seed", "ckpt", "_init_from", "sim.T", "sim.dtype")

SUGGEST = {
    "energy": "fewer time steps (the SNN pays for every neuron at every step), sparser spikes in the named "
              "layers, or a quantised ANN instead at this T",
    "dead": "raise T, start at v0 = θ/2 (convert.v_init=0.5), or lower θ (convert=pnorm)",
    "dead_v0": "raise T, or lower θ (convert=pnorm with a lower convert.percentile)",
    "theta_high": "lower θ: recalibrate (convert=maxnorm / pnorm) or fix the trained or edited θ",
    "theta_nonpositive": "θ must be > 0: recalibrate, or retrain λ (act.init_threshold, weight decay on λ)",
    "theta_nonfinite": "θ diverged: retrain, or recalibrate on finite activations",
    "ann_silent": "the ANN itself is dead here: retrain it before converting",
    "clip": "raise θ (higher convert.percentile, convert=channelnorm) or train a clipped ANN (act=clip / qcfs)",
    "floor": "raise T, or start at v0 = θ/2 (convert.v_init=0.5, or convert=shift), or lower θ (convert=pnorm)",
    "floor_v0": "raise T, or lower θ (convert=pnorm); for a QCFS ANN, train with act.L closer to T",
    "sin": "use offset-spike calibration (convert=cos) or MSAT thresholds (convert=msat), or raise T",
    "chance_ann": "train the ANN first (more train.epochs, a working train.lr)",
    "bn": "put the BN right after a conv/linear (not after pooling, an add or in a shortcut) so it folds",
    "preset": "drop the override to follow the preset's recipe",
    "rate_limit": "expect the SNN at large T near the limit, not the ANN; if λ stayed near its init, let it "
                  "adapt (train.threshold_lr_scale=20, or a smaller act.init_threshold), train with a larger "
                  "act.L, or read the SNN at T = act.L (exact for QCFS)",
}


@dataclass(frozen=True)
class Finding:
    T: int | None  # None: holds for every T (structure, thresholds, config)
    layer: str
    finding: str
    value: float
    severity: str
    message: str
    suggestion: str

    def line(self) -> str:
        where = f"T={self.T} " if self.T is not None else ""
        layer = f"{self.layer}: " if self.layer else ""
        return f"{where}{layer}{self.finding}: {self.message} → {self.suggestion}"


@dataclass
class LayerInfo:
    """What the doctor knows of one spiking layer besides its rows."""

    name: str
    threshold: torch.Tensor | None = None  # θ (0-dim or [C]); None: unknown
    rate_coded: bool = True  # θ·s neurons (IF, shift, COS, MSAT); not the ±1 all-integer ones
    ann_percentile: float | None = None  # 99.9th pct of the ANN's positive activations (None: not measured)
    ann_mean_abs: float | None = None  # mean |a_ANN| over all neurons and images
    ann_positive_fraction: float | None = None  # fraction of (image, neuron) with a_ANN > 0
    v_init: float | None = None  # initial potential / θ, plus ½ for shifted neurons (θ/2T per step: θ/2 in all)


@dataclass
class Report:
    findings: list[Finding]
    rows: list[dict] = field(default_factory=list)  # the per-layer rows (with active_fraction when measured)
    accuracy: dict[int, float] = field(default_factory=dict)
    ann_acc: float | None = None
    images: int = 0
    rate_limit_acc: float | None = None  # the ANN with clip(x, 0, λ) for its quantisers (None: no quantiser)


# -- helpers on modules --------------------------------------------------------------
def neuron_order(snn: nn.Module) -> list[str]:
    """Names of the spiking layers in forward order (the graph's order for an fx module)."""
    modules = dict(snn.named_modules())
    if isinstance(snn, fx.GraphModule):
        names = [n.target for n in snn.graph.nodes
                 if n.op == "call_module" and isinstance(modules.get(n.target), Neuron)]
        if names:
            return list(dict.fromkeys(names))
    return [name for name, m in modules.items() if isinstance(m, Neuron)]


def is_rate_coded(neuron: nn.Module) -> bool:
    """θ·s neurons (their θ is an activation level); the ±1 all-integer neurons carry ``unit``."""
    return neuron.rate_coded


def layer_infos(snn: nn.Module) -> dict[str, LayerInfo]:
    modules = dict(snn.named_modules())
    return {name: LayerInfo(name, modules[name].threshold.detach().cpu(), is_rate_coded(modules[name]),
                            v_init=_v_start(modules[name]))
            for name in neuron_order(snn)}


def _v_start(neuron: nn.Module) -> float | None:
    return float(neuron.v_start)


def unfolded_batchnorms(snn: nn.Module) -> list[tuple[str, str, float]]:
    """BatchNorms still in the spiking part of the SNN: (name, what feeds it, max |per-step bias| it adds).

    A BN before the first neuron (e.g. the all-integer SNN's first layer) sees the real-valued input once
    per image and is harmless; one downstream of a neuron runs on spikes at every step.
    """
    bn_type = nn.modules.batchnorm._BatchNorm
    found = []
    if isinstance(snn, fx.GraphModule):
        modules = dict(snn.named_modules())
        spiking: set[fx.Node] = set()  # nodes that depend on some neuron's output
        for node in snn.graph.nodes:
            if any(arg in spiking for arg in node.all_input_nodes) or \
                    node.op == "call_module" and isinstance(modules.get(node.target), Neuron):
                spiking.add(node)
        for node in snn.graph.nodes:
            if node.op == "call_module" and isinstance(modules.get(node.target), bn_type) and node in spiking:
                prev = node.args[0] if node.args else None
                feeder = (prev.target if prev.op == "call_module" else f"{prev.op} {prev.target}") \
                    if isinstance(prev, fx.Node) else "?"
                found.append((node.target, str(feeder), _bn_shift(modules[node.target])))
        return found
    return [(name, "?", _bn_shift(m)) for name, m in snn.named_modules() if isinstance(m, bn_type)]


def _bn_shift(bn: nn.Module) -> float:
    """max over channels of |β − γ·μ/√(σ² + ε)|: what an unfolded BN adds to every step's input."""
    if bn.running_mean is None:
        return float("nan")
    scale = (bn.weight if bn.weight is not None else 1.0) / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.bias is not None else 0.0) - bn.running_mean * scale
    return float(shift.detach().abs().max())


@torch.no_grad()
def ann_activation_stats(ann: nn.Module, names: Sequence[str], images: torch.Tensor, *,
                         percentile: float = ACT_PERCENTILE, seed: int = 0) -> tuple[dict[str, dict], torch.Tensor]:
    """Per activation site (named like the SNN's neurons): the percentile of the positive activations, the
    mean |a| and the positive fraction on ``images``; also the ANN's logits."""
    modules = dict(ann.named_modules())
    outputs: dict[str, torch.Tensor] = {}

    def hook_for(name):
        def hook(_m, _inputs, out):
            outputs[name] = out.detach()
        return hook

    handles = [modules[n].register_forward_hook(hook_for(n)) for n in names if n in modules]
    try:
        logits = ann(images)
    finally:
        for h in handles:
            h.remove()
    generator = torch.Generator().manual_seed(seed)
    stats = {}
    for name, out in outputs.items():
        out = out.double()
        pos = out[out > 0].flatten().cpu()
        if pos.numel() > MAX_PERCENTILE_SAMPLES:
            pos = pos[torch.randperm(pos.numel(), generator=generator)[:MAX_PERCENTILE_SAMPLES]]
        stats[name] = {"percentile": float(torch.quantile(pos, percentile / 100.0)) if pos.numel() else 0.0,
                       "mean_abs": float(out.abs().mean()),
                       "positive_fraction": float((out > 0).double().mean())}
    return stats, logits


class _ClipAt(nn.Module):
    """clip(x, 0, θ) with a trained layer / channel threshold: a quantiser's T → ∞ rate limit."""

    def __init__(self, threshold: torch.Tensor):
        super().__init__()
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.threshold if self.threshold.dim() == 0 else \
            self.threshold.view(-1, *([1] * (x.dim() - 2)))
        return torch.minimum(torch.relu(x), theta.to(x.dtype))


def rate_limit_accuracy(ann: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Accuracy (%) of ``ann`` with every QCFS-family quantiser replaced by clip(x, 0, λ); None if it has none.

    An IF neuron with θ = λ and v0 = θ/2 fed a constant z for T steps emits
    λ·floor(z·T/λ + ½)/T (clipped to [0, λ]): the quantiser with T levels
    instead of L. As T grows that tends to clip(z, 0, λ), so this network is
    what a QCFS conversion approaches at large T — its accuracy, not the
    ANN's, is the large-T ceiling (up to the per-layer errors the rows show).
    """
    model = copy.deepcopy(ann).eval()
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (QCFS, CSQCFS)):
                setattr(parent, name, _ClipAt(child.conversion_threshold().to(images.device)))
                replaced += 1
    if not replaced:
        return None
    with torch.no_grad():
        return 100.0 * float((model(images).argmax(1) == labels).double().mean())


def rate_limit_findings(ann_acc: float | None, limit_acc: float | None, images: int) -> list[Finding]:
    """A note when the quantiser's clip limit scores clearly below the ANN (≥ 2 images and ≥ 0.5 points)."""
    if ann_acc is None or limit_acc is None or images <= 0:
        return []
    gap = ann_acc - limit_acc
    if gap < 0.5 or gap * images / 100.0 < 2 - 1e-9:
        return []
    return [Finding(None, "", "rate_limit_below_ann", float(limit_acc), "warning",
                    f"the ANN with its quantisers replaced by clip(x, 0, λ) — what the SNN tends to as T "
                    f"grows — scores {limit_acc:.1f} % vs the ANN's {ann_acc:.1f} %: this ANN relies on its "
                    f"L-level quantisation", SUGGEST["rate_limit"])]


def add_ann_stats(infos: Mapping[str, LayerInfo], stats: Mapping[str, dict]) -> None:
    for name, s in stats.items():
        if name in infos:
            infos[name].ann_percentile = s["percentile"]
            infos[name].ann_mean_abs = s["mean_abs"]
            infos[name].ann_positive_fraction = s["positive_fraction"]


class ActiveFraction:
    """Forward hook on a neuron: the fraction of (image, neuron) pairs that fired at least once by each read T.

    A pass starts when the neuron's step counter ``t`` restarts (``reset_state``); with ``per_T`` the engine
    runs one pass per T (pass k reads only ``time_steps[k]``), else one pass reads them all.
    """

    def __init__(self, name: str, neuron: nn.Module, time_steps: Sequence[int], per_T: bool):
        self.name = name
        self.time_steps = sorted(set(int(t) for t in time_steps))
        self.per_T = per_T
        self.passes = 0
        self.reads: set[int] = set()
        self.spiked: torch.Tensor | None = None
        self.fired: dict[int, float] = {T: 0.0 for T in self.time_steps}
        self.total: dict[int, float] = {T: 0.0 for T in self.time_steps}
        self.handle = neuron.register_forward_hook(self)

    def __call__(self, module, _inputs, out):
        steps = int(module.time_steps)
        seq = out.reshape(steps, -1)
        start = int(module.t) - steps
        if start <= 0 or self.spiked is None:
            k = self.passes % len(self.time_steps)
            self.reads = {self.time_steps[k]} if self.per_T else set(self.time_steps)
            self.passes += 1
            self.spiked = torch.zeros(seq.shape[1], dtype=torch.bool, device=seq.device)
            start = 0
        for s in range(steps):
            self.spiked |= seq[s] != 0
            t = start + s + 1
            if t in self.reads:
                self.fired[t] += float(self.spiked.sum())
                self.total[t] += self.spiked.numel()

    def fractions(self) -> dict[int, float]:
        return {T: self.fired[T] / self.total[T] for T in self.time_steps if self.total[T]}

    def remove(self):
        self.handle.remove()


# -- the analysis -----------------------------------------------------------------------
def chance_level(num_classes: int) -> float:
    return CHANCE_FACTOR * 100.0 / max(int(num_classes), 1)


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _pct(x: float) -> str:
    return f"{100 * x:.3g} %"


def threshold_findings(infos: Mapping[str, LayerInfo]) -> list[Finding]:
    out = []
    for name, info in infos.items():
        th = info.threshold
        if th is None:
            continue
        th = th.detach().double().flatten()
        bad = ~torch.isfinite(th)
        if bool(bad.any()):
            out.append(Finding(None, name, "threshold_nonfinite", float(bad.sum()), "error",
                               f"θ is NaN/inf in {int(bad.sum())} of {th.numel()} channel(s)",
                               SUGGEST["theta_nonfinite"]))
        if not info.rate_coded:
            continue  # ±1 neurons: θ⁺₀ is a level in 2^k·z units and may be ≤ 0
        finite = th[~bad]
        nonpos = finite <= 0
        if bool(nonpos.any()):
            out.append(Finding(None, name, "threshold_nonpositive", float(finite[nonpos].min()), "error",
                               f"θ ≤ 0 in {int(nonpos.sum())} of {th.numel()} channel(s) (min θ = "
                               f"{float(finite.min()):.3g})", SUGGEST["theta_nonpositive"]))
        if info.ann_percentile is None or not finite.numel():
            continue
        if info.ann_percentile <= 0:
            out.append(Finding(None, name, "ann_layer_silent", 0.0, "warning",
                               "the ANN's activation is 0 on every image here", SUGGEST["ann_silent"]))
            continue
        positive = finite[finite > 0]
        if not positive.numel():
            continue
        theta = float(positive.median())
        ratio = theta / info.ann_percentile
        if ratio > THETA_RANGE_FACTOR:
            what = "θ" if th.numel() == 1 else "median θ"
            out.append(Finding(None, name, "threshold_above_range", ratio, "warning",
                               f"{what} = {theta:.3g} is {ratio:.3g}× the {ACT_PERCENTILE:g}th percentile "
                               f"({info.ann_percentile:.3g}) of its ANN activations (limit {THETA_RANGE_FACTOR:g}×)",
                               SUGGEST["theta_high"]))
    return out


def batchnorm_findings(batchnorms: Iterable[tuple[str, str, float]]) -> list[Finding]:
    return [Finding(None, name, "unfolded_batchnorm", shift, "error",
                    f"BatchNorm still in the SNN (fed by {feeder}); it adds up to {shift:.3g} to the input of "
                    f"every step", SUGGEST["bn"]) for name, feeder, shift in batchnorms]


def _by_T(rows: Iterable[Mapping]) -> dict[int, dict[str, Mapping]]:
    table: dict[int, dict[str, Mapping]] = {}
    for row in rows:
        table.setdefault(int(row["T"]), {})[str(row["layer"])] = row
    return table


def _active(row: Mapping) -> tuple[float | None, bool]:
    """(fraction that fired by T or an upper bound on it, whether it is exact)."""
    frac = row.get("active_fraction")
    if _finite(frac):
        return float(frac), True
    rate = row.get("firing_rate")
    if _finite(rate):
        # Every neuron that fired did so at least once: fraction ≤ spikes per neuron = rate·T.
        return float(rate) * int(row["T"]), rate == 0
    return None, False


def _relative_error(row: Mapping, info: LayerInfo | None) -> float | None:
    err = row.get("ann_error")
    if info is None or not _finite(err) or not info.ann_mean_abs:
        return None
    return float(err) / info.ann_mean_abs


def error_sources(row: Mapping, info: LayerInfo | None) -> dict[str, float] | None:
    """The layer's own conversion error by source, per neuron, in units of its mean ANN activation.

    clip = mean max(z̄ − θ, 0); floor = the mean |z̄ − φ| over in-range neurons × their share (≈ the ANN's
    positive fraction); SIN = the SIN ratio × the ANN-silent share × θ/T (one spike's worth each).
    """
    if info is None or not info.rate_coded or not info.ann_mean_abs or info.threshold is None:
        return None
    clip, floor, sin = (row.get(k) for k in ("clip_error", "floor_error", "sin_ratio"))
    if not (_finite(clip) and _finite(floor)):
        return None
    pos = info.ann_positive_fraction if _finite(info.ann_positive_fraction) else 1.0
    theta = info.threshold.detach().double()
    theta = theta[torch.isfinite(theta)]
    theta_mean = float(theta.mean()) if theta.numel() else 0.0
    sin_part = float(sin) * (1.0 - pos) * theta_mean / int(row["T"]) if _finite(sin) else 0.0
    scale = info.ann_mean_abs
    return {"clip": float(clip) / scale, "floor": float(floor) * pos / scale, "sin": max(sin_part, 0.0) / scale}


def _error_jump(names: Sequence[str], layers: Mapping[str, Mapping], infos: Mapping[str, LayerInfo],
                silent: str | None, fades: bool = False) -> tuple[str, str]:
    """The layer to blame for an output at chance, and why: the first silent layer (it loses its whole signal),
    else the first layer whose error vs the ANN (× its mean activation) rises by ≥ ERROR_JUMP over the layer
    before, else the largest rise."""
    rel = [(n, _relative_error(layers[n], infos.get(n))) for n in names]
    rel = [(n, r) for n, r in rel if r is not None]
    steps = [(n, prev, r) for (n, r), prev in zip(rel, [0.0] + [r for _, r in rel])]
    if silent is not None:
        return silent, f"; the signal {'fades' if fades else 'dies'} here"
    if not steps:
        return "", ""
    n, prev, r = next((s for s in steps if s[2] - s[1] >= ERROR_JUMP), max(steps, key=lambda s: s[2] - s[1]))
    return n, f"; error vs the ANN jumps first here ({prev:.2f} → {r:.2f} × mean activation)"


def _started_half(info: LayerInfo | None) -> bool:
    """The neurons already start at v0 ≥ θ/2 (so suggesting the θ/2 shift would be no help)."""
    return info is not None and info.v_init is not None and info.v_init >= 0.5


def _silence_fix(info: LayerInfo | None) -> str:
    return SUGGEST["dead_v0"] if _started_half(info) else SUGGEST["dead"]


def layer_findings(rows: Sequence[Mapping], infos: Mapping[str, LayerInfo], order: Sequence[str], *,
                   accuracy: Mapping[int, float] | None = None, ann_acc: float | None = None,
                   num_classes: int | None = None) -> list[Finding]:
    out: list[Finding] = []
    table = _by_T(rows)
    accuracy = dict(accuracy or {})
    chance = chance_level(num_classes) if num_classes else None
    for T in sorted(set(table) | set(accuracy)):
        layers = table.get(T, {})
        names = [n for n in order if n in layers] + [n for n in layers if n not in order]
        # Where the signal dies: the first dead or nearly dead layer.
        first = None
        for i, name in enumerate(names):
            frac, exact = _active(layers[name])
            if frac is None:
                continue
            if frac == 0 and exact:
                first = (i, name, frac, "dead_layer")
                break
            if frac < NEARLY_DEAD_FRACTION:
                first = (i, name, frac, "nearly_dead_layer")
                break
        if first is not None:
            i, name, frac, kind = first
            fix = _silence_fix(infos.get(name))
            after = [_active(layers[n]) for n in names[i + 1:]]
            silent = sum(1 for f, exact in after if f == 0 and exact)
            faint = sum(1 for f, _ in after if f is not None and f < NEARLY_DEAD_FRACTION) - silent
            said = [f"{silent} silent" if silent else "", f"{faint} nearly silent" if faint else ""]
            tail = f" (later layers: {', '.join(x for x in said if x)})" if silent or faint else ""
            if kind == "dead_layer":
                msg = f"no spike at all by T: the signal dies here{tail}"
                out.append(Finding(T, name, kind, frac, "error", msg, fix))
            else:
                bound = "" if _finite(layers[name].get("active_fraction")) else "≤ "
                msg = (f"{bound}{_pct(frac)} of neurons fired by T (< {_pct(NEARLY_DEAD_FRACTION)}): "
                       f"the signal fades here{tail}")
                out.append(Finding(T, name, kind, frac, "warning", msg, fix))

        # Which error source dominates the layers' own error (only when the SNN falls short at this T).
        sources = {n: error_sources(layers[n], infos.get(n)) for n in names}
        acc = accuracy.get(T)
        short = acc is None or ann_acc is None or ann_acc - acc >= MIN_ACC_GAP
        if short:
            ranked = sorted(((sum(s.values()), n) for n, s in sources.items() if s), reverse=True)
            reported = 0
            for total, name in ranked:
                if total < LOCAL_ERROR_MIN or reported >= MAX_CAUSE_LAYERS:
                    break
                if first is not None and names.index(name) >= first[0]:
                    continue  # a silent layer's error is its silence, and the layers after it starve
                s = sources[name]
                source = max(s, key=s.get)
                if s[source] < DOMINANT_SHARE * total:
                    continue
                parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(s.items(), key=lambda kv: -kv[1]))
                msg = f"own error {total:.2f} × its mean ANN activation: {parts}"
                fix = SUGGEST[source]
                if source == "floor" and _started_half(infos.get(name)):
                    fix = SUGGEST["floor_v0"]
                out.append(Finding(T, name, f"{source}_dominated", s[source], "warning", msg, fix))
                reported += 1

        # Output at chance, and where the error vs the ANN jumps first.
        if chance is not None and acc is not None and acc <= chance:
            name, where = _error_jump(names, layers, infos, first[1] if first is not None else None,
                                      fades=first is not None and first[3] == "nearly_dead_layer")
            cause = next((f for f in out if f.T == T and f.layer == name), None) if name else None
            fix = cause.suggestion if cause is not None else _silence_fix(infos.get(name))
            if ann_acc is not None and ann_acc <= chance:
                fix = SUGGEST["chance_ann"]
            out.append(Finding(T, name, "output_at_chance", float(acc), "error",
                               f"accuracy {acc:.1f} % ≤ {CHANCE_FACTOR:g} × chance = {chance:.1f} %{where}", fix))
    return out


def energy_findings(energy_rows: Sequence[Mapping], top: int = 2) -> list[Finding]:
    """One note per T at which the SNN costs more energy than its equal-bit QANN (energy.csv's rows), naming
    the layers that make most of the difference (their SNN − QANN energy, largest first, as shares of the
    layers that cost more than in the QANN). A note, not a fault: the conversion may be sound."""
    by_T: dict[int, list[Mapping]] = {}
    for row in energy_rows:
        by_T.setdefault(int(row["T"]), []).append(row)
    out = []
    for T, rows in sorted(by_T.items()):
        snn = sum(float(r["energy_mj"]) for r in rows)
        qann = sum(float(r["qann_energy_mj"]) for r in rows)
        if not qann > 0 or snn <= qann:
            continue
        excess = sorted(((float(r["energy_mj"]) - float(r["qann_energy_mj"]), r["layer"]) for r in rows), reverse=True)
        worst = [(d, name) for d, name in excess[:top] if d > 0]
        positive = sum(d for d, _ in excess if d > 0)  # the layers that cost more than the QANN's
        share = ", ".join(f"{name} {100 * d / positive:.0f} %" for d, name in worst)
        model, bits = rows[0].get("energy_model", "?"), rows[0].get("qann_bits", "?")
        out.append(Finding(T, worst[0][1] if worst else "", "snn_costs_more_than_qann", snn / qann, "note",
                           f"the SNN needs {snn:.3g} mJ per image, {snn / qann:.2g}× its {bits}-bit QANN's "
                           f"{qann:.3g} mJ (energy={model}); most of the excess: {share}", SUGGEST["energy"]))
    return out


def diagnose(rows: Sequence[Mapping], infos: Mapping[str, LayerInfo], *, order: Sequence[str] | None = None,
             accuracy: Mapping[int, float] | None = None, ann_acc: float | None = None,
             num_classes: int | None = None, batchnorms: Iterable[tuple[str, str, float]] = (),
             departures: Iterable[Finding] = (), energy_rows: Sequence[Mapping] = ()) -> list[Finding]:
    """Every finding: structural ones (T = None) first, then by T and forward layer order; notes last.
    ``energy_rows``: energy.csv's rows (the SNN against its equal-bit QANN, :func:`energy_findings`)."""
    order = list(order) if order is not None else list(infos)
    findings = batchnorm_findings(batchnorms) + threshold_findings(infos)
    if ann_acc is not None and num_classes and ann_acc <= chance_level(num_classes):
        findings.append(Finding(None, "", "ann_at_chance", float(ann_acc), "error",
                                f"ANN accuracy {ann_acc:.1f} % ≤ {CHANCE_FACTOR:g} × chance "
                                f"({chance_level(num_classes):.1f} %)", SUGGEST["chance_ann"]))
    findings += layer_findings(rows, infos, order, accuracy=accuracy, ann_acc=ann_acc, num_classes=num_classes)
    findings += energy_findings(energy_rows)
    findings += list(departures)
    rank = {name: i for i, name in enumerate(order)}
    return sorted(findings, key=lambda f: (f.severity == "note", f.T is not None, f.T or 0,
                                           rank.get(f.layer, len(rank))))


# -- preset departures ----------------------------------------------------------------
def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        flat = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


def _ignored(key: str, ignore: Sequence[str]) -> bool:
    return any(key == k or key.startswith(k + ".") for k in ignore)


def preset_departures(run: Mapping, preset: Mapping, *,
                      ignore: Sequence[str] | None = None) -> list[tuple[str, Any, Any]]:
    """(dotted key, run value, preset value) for every recipe key where the run differs from its preset."""
    if ignore is None:
        ignore = (*NOT_RECIPE_KEYS, *sorted(runtime_keys(run) | runtime_keys(preset)))
    mine, theirs = _flatten(recipe(dict(run))), _flatten(recipe(dict(preset)))
    missing = object()
    out = []
    for key in sorted(set(mine) | set(theirs)):
        if _ignored(key, ignore):
            continue
        a, b = mine.get(key, missing), theirs.get(key, missing)
        if a != b:
            out.append((key, None if a is missing else a, None if b is missing else b))
    return out


def departure_findings(preset_name: str, departures: Iterable[tuple[str, Any, Any]]) -> list[Finding]:
    out = []
    for key, mine, theirs in departures:
        value = float(mine) if isinstance(mine, (int, float)) and not isinstance(mine, bool) else float("nan")
        out.append(Finding(None, "", "preset_departure", value, "note",
                           f"{key} = {mine!r} but experiment={preset_name} has {theirs!r}", SUGGEST["preset"]))
    return out


# -- running the examination on a batch ---------------------------------------------------
@torch.no_grad()
def examine(snn: nn.Module, ann: nn.Module, images: torch.Tensor, labels: torch.Tensor, time_steps: Sequence[int], *,
            num_classes: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
            chunk: int | str = "auto", departures: Iterable[Finding] = (), progress: bool = True,
            energy: Mapping | None = None, levels: int | None = None) -> Report:
    """Simulate ``snn`` on one batch with per-layer recording and diagnose it against ``ann``.

    ``energy``: the energy model's params (``energy=``; None: horowitz45) the SNN is priced with against its
    equal-bit QANN; ``levels``: the ANN's own quantisation steps (act.L), which fix the QANN's bits.

    ``progress``: a bar over that batch's simulation (:func:`snnx.progress.track`: its elapsed time)."""
    device = torch.device(device)
    ann = copy.deepcopy(ann).to(device, dtype).eval()
    images = images.to(device, dtype)
    labels = labels.to(device)
    order = neuron_order(snn)
    infos = layer_infos(snn)
    batchnorms = unfolded_batchnorms(snn)
    stats, logits = ann_activation_stats(ann, order, images)
    add_ann_stats(infos, stats)
    ann_acc = 100.0 * float((logits.argmax(1) == labels).double().mean())

    simulator = Simulator(snn, device=device, chunk=chunk, dtype=dtype)
    probes = [ActiveFraction(name, neuron, time_steps, simulator.per_T) for name, neuron in simulator.neurons]
    try:
        result = simulator.run(track([(images, labels)], description="doctor: simulate", enabled=progress),
                               time_steps, ann=ann, record_layers=True)
    finally:
        for probe in probes:
            probe.remove()
    active = {p.name: p.fractions() for p in probes}
    rows = [{**row, "active_fraction": active.get(row["layer"], {}).get(int(row["T"]), float("nan"))}
            for row in result.layer_rows]
    accuracy = {T: result.accuracy(T) for T in result.time_steps}
    limit = rate_limit_accuracy(ann, images, labels) if all(i.rate_coded for i in infos.values()) else None
    energy_table = []
    if result.layer_counts is not None:
        energy_table = energy_rows(price_run(energy, result.layer_counts, result.time_steps, levels),
                                   result.layer_counts, (energy or DEFAULT_ENERGY)["name"])
    findings = diagnose(rows, infos, order=order, accuracy=accuracy, ann_acc=ann_acc, num_classes=num_classes,
                        batchnorms=batchnorms,
                        departures=[*rate_limit_findings(ann_acc, limit, int(images.shape[0])), *departures],
                        energy_rows=energy_table)
    return Report(findings, rows, accuracy, ann_acc, int(images.shape[0]), limit)


def frame(findings: Iterable[Finding]):
    """doctor.csv: one row per finding."""
    rows = [asdict(f) for f in findings]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["T"] = table["T"].astype("Int64")
    return table


# Findings about the whole network at one T: the layer each names (and so its fix) is where the cause shows at
# that T, which can move from one T to the next; over T they are still one finding.
NETWORK_FINDINGS = ("output_at_chance", "snn_costs_more_than_qann")


def _group_key(f: Finding) -> tuple:
    if f.T is not None and f.finding in NETWORK_FINDINGS:
        return (f.finding,)
    return (f.finding, f.layer, f.suggestion, f.message if f.T is None else "")


def grouped(findings: Sequence[Finding]) -> list[list[Finding]]:
    """Findings that differ only by T (for a network-wide one, also by the layer it names), merged for display,
    in the order of their first occurrence (diagnose's order: structure first, then by T and forward layer
    order); each group in the findings' order."""
    groups: dict[tuple, list[Finding]] = {}
    for f in findings:
        groups.setdefault(_group_key(f), []).append(f)
    return list(groups.values())


def group(findings: Sequence[Finding]) -> list[tuple[list[int], Finding, Finding]]:
    """:func:`grouped` as (the Ts, the first, the last) of each group."""
    return [([f.T for f in fs if f.T is not None], fs[0], fs[-1]) for fs in grouped(findings)]
