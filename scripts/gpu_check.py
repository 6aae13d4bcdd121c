#!/usr/bin/env python
"""The device check (issue 20): train, convert with every method, simulate, and compare with a CPU float64 run.

    python scripts/gpu_check.py                  # device=auto: CUDA when present, else CPU (make gpu-check)
    python scripts/gpu_check.py --device cpu     # here, on the CPU (make gpu-check device=cpu)
    python scripts/gpu_check.py --quick          # tiny sizes: a smoke run of the whole check

On the chosen device it trains one epoch of a width-0.25 VGG-11 and a ResNet-20 (snnx's own trainer and
artifact cache, under ``--workdir``) on a generated CIFAR-10 written in the real on-disk format
(``cifar-10-batches-py/``, read by snnx's cifar10 loader): each class is a coloured grating of its own
orientation and frequency plus pixel noise, so one epoch gives an ANN well above chance. Then every
conversion method of the registry (each with the activation its entry accepts: ReLU where it takes any ANN,
CS-QCFS for a trained threshold, else the first activation it accepts) converts the ANN, the SNN is simulated
to T = 1, 2, 4, …, ``--max-T`` on the device in float32, and the same SNN, copied to the CPU in float64, is
simulated on the same images: the agreement table gives, per method and T, the share of images whose
predictions agree and the largest |Δ| of the mean output (the SNN's logits). A method / model pair that
cannot be converted is listed with the converter's reason.

Then, on the device, with the QCFS conversion of the CS-QCFS ANN and one batch of ``--batch-size`` test
images::

    sim_images_per_s_T32=…      simulating T = 32 (chunk auto, spike/SOP accounting on)
    ann32_images_per_s=…        32 plain forwards of the ANN (eval mode, the same batch)
    dense_ratio=…               their time ratio, simulation / 32 forwards
    train_images_per_s_relu=…   training steps (SGD, batch ``--train-batch``) of the ReLU ANN
    train_images_per_s_csqcfs=… … of the CS-QCFS ANN, the same initial weights and batches
    train_ratio=…               CS-QCFS / ReLU training time
    chunk_auto=… chunk_best=… (images/s each)   the sim.chunk the auto rule picks vs the fastest of 1 … 32

Times are wall-clock (CUDA synchronised); compared callables run in rounds, one of each per round in
rotating order after a warm-up round, and a ratio is the median of the within-round ratios
(scripts/bench_sim.py's method).

Exit status 1 when some method agrees with the float64 reference on fewer than 99 % of the images at some
T, unless every disagreeing image there is a near-tie: its float64 margin (top logit − runner-up) is no
larger than the largest |Δ logits| float32 produced on the images of that cell whose predictions agree
(the rounding noise of that run). The table then lists those images' margins beside that noise.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import pickle
import platform
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import snnx.api as api  # noqa: E402
from bench_sim import interleaved, median, ratio  # noqa: E402
from snnx import pipeline  # noqa: E402
from snnx.activations.registry import ACTIVATIONS  # noqa: E402
from snnx.convert.methods import METHODS  # noqa: E402
from snnx.errors import SnnxError  # noqa: E402
from snnx.models.registry import MODELS  # noqa: E402
from snnx.seeding import resolve_device  # noqa: E402
from snnx.sim import Simulator  # noqa: E402

CPU = torch.device("cpu")
AGREEMENT = 99.0  # % of images whose predictions must agree with the float64 reference, at every T
# A disagreement is put down to float32 rounding when the two runs' spikes first differ in at most MAX_FLIPS
# neurons of one layer whose inputs up to that step agree to INPUT_ROUNDING (relative): float32's unit roundoff
# (6e-8) summed over a conv's fan-in of ~10^3 terms, with room. Images beyond MAX_TRACED in one cell are not
# traced, and are not explained.
MAX_FLIPS = 3
INPUT_ROUNDING = 1e-4
MAX_TRACED = 5
T_DENSE = 32
CHUNKS = (1, 2, 4, 8, 16, 32)
NETS = (("vgg11", 0.25), ("resnet20", 1.0))
# The activation a method is run with, among those its registry entry accepts: ReLU when it takes any ANN,
# CS-QCFS when it needs a trained threshold (the act whose training throughput is measured too), else the
# registry's first.
PREFERRED_ACTS = ("relu", "csqcfs")
# The sizes: None = by device (a CPU run stays within a few minutes on 2 cores).
SIZES = {  # name: (cuda, cpu, --quick)
    "train_images": (10000, 2000, 200),
    "test_images": (1000, 32, 16),
    "max_T": (64, 64, 8),
    "batch_size": (250, 32, 16),
    "train_batches": (50, 8, 2),
    "rounds": (5, 2, 1),
}


def log(msg: str = "") -> None:
    print(msg, flush=True)


# -- the generated CIFAR-10 ----------------------------------------------------------------------
def learnable_images(labels: np.ndarray, rng: np.random.Generator, noise: float = 32.0) -> np.ndarray:
    """uint8 CIFAR rows [N, 3072] (channel-major 3×32×32): class c is a grating of its own orientation
    (c·18°), frequency (2–4 periods per image) and colour, with a random phase and Gaussian pixel noise."""
    colours = np.random.default_rng(12345).uniform(-1.0, 1.0, size=(10, 3))
    yy, xx = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    out = np.empty((len(labels), 3, 32, 32), np.float32)
    for c in range(10):
        idx = np.nonzero(labels == c)[0]
        theta = math.pi * c / 10
        freq = 2 * math.pi * (2 + c % 3) / 32
        phase = rng.uniform(0, 2 * math.pi, size=(len(idx), 1, 1))
        wave = np.sin(freq * (xx * math.cos(theta) + yy * math.sin(theta))[None] + phase)
        out[idx] = 128 + 50 * colours[c][None, :, None, None] \
            + 50 * wave[:, None] * np.sign(colours[c])[None, :, None, None]
    out += rng.normal(0.0, noise, size=out.shape)
    return np.clip(out, 0, 255).astype(np.uint8).reshape(len(labels), 3 * 32 * 32)


def _pickle(path: Path, obj: dict) -> None:
    # Protocol 2 with str keys: how torchvision reads the official (Python 2) pickles, encoding="latin1".
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    os.replace(tmp, path)


def write_cifar10(root: Path, train_images: int, test_images: int, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with ``train_images`` (over data_batch_1..5) and ``test_images`` learnable
    images; rewritten only when the sizes or the seed differ from the stamp of the last one written."""
    folder = Path(root) / "cifar-10-batches-py"
    stamp = folder / "gpu_check.json"
    wanted = {"train_images": train_images, "test_images": test_images, "seed": seed, "version": 1}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_batch = [train_images // 5 + (1 if b < train_images % 5 else 0) for b in range(5)]
    for b, n in enumerate(per_batch, start=1):
        labels = rng.integers(0, 10, n)
        _pickle(folder / f"data_batch_{b}", {"batch_label": f"training batch {b} of 5",
                                             "data": learnable_images(labels, rng), "labels": labels.tolist(),
                                             "filenames": [f"train_{b}_{i}.png" for i in range(n)]})
    labels = rng.integers(0, 10, test_images)
    _pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "data": learnable_images(labels, rng),
                                    "labels": labels.tolist(), "filenames": [f"test_{i}.png" for i in range(test_images)]})
    _pickle(folder / "batches.meta", {"label_names": [f"grating{c}" for c in range(10)],
                                      "num_cases_per_batch": max(per_batch), "num_vis": 3072})
    stamp.write_text(json.dumps(wanted))
    return folder


# -- the ANNs -----------------------------------------------------------------------------------
def ann_config(args, data_root: Path, model: str, width: float, act: str) -> dict:
    return api.compose("dataset=cifar10", f"dataset.root={data_root}", "dataset.num_workers=0", f"model={model}",
                       f"model.width={width}", f"act={act}", "train=smoke", "train.epochs=1",
                       f"train.batch_size={args.train_batch}", f"paths.root={args.workdir}", "progress=false",
                       f"seed={args.seed}", stage="train")


def method_act(method: str) -> tuple[str | None, list[str]]:
    """(the act ``method`` is run with, every act its entry accepts at its default keys)."""
    entry = METHODS.get(method)
    defaults = entry.defaults()
    accepted = [a.name for a in ACTIVATIONS if entry.trait("accepts")(a, defaults)]
    chosen = next((a for a in PREFERRED_ACTS if a in accepted), accepted[0] if accepted else None)
    return chosen, accepted


@dataclass
class Trained:
    model: nn.Module
    config: dict
    test_acc: float
    stats: dict | None = None


class ANNs:
    """The trained ANN (and its calibration) per (model, width, act), trained on first use."""

    def __init__(self, args, data_root: Path, device: torch.device):
        self.args, self.data_root, self.device = args, data_root, device
        self._done: dict[tuple, Trained] = {}

    def get(self, model: str, width: float, act: str) -> Trained:
        key = (model, width, act)
        if key not in self._done:
            config = ann_config(self.args, self.data_root, model, width, act)
            trained = pipeline.ensure_ann(config, self.device)
            self._done[key] = Trained(trained.model.cpu().eval(), config, float(trained.metrics["test_acc"]))
        return self._done[key]

    def stats(self, trained: Trained) -> dict:
        if trained.stats is None:
            data = api.build_dataset(trained.config, "train")
            trained.stats = api.calibrate(trained.model, data, size=min(500, self.args.train_images),
                                          device=str(self.device), seed=self.args.seed)
            trained.model.cpu()
        return trained.stats


def convert(anns: ANNs, model: str, width: float, method: str, act: str):
    """(SNN, the model it was converted from, its ANN) — with a model of the method's own (``<model>_<method>``,
    e.g. vgg11_allint) when the converter rejects ``model`` and the registry has one."""
    trained = anns.get(model, width, act)
    entry = METHODS.get(method)
    try:
        stats = anns.stats(trained) if entry.trait("needs_stats") else None
        return api.convert(trained.model, method=method, stats=stats, seed=anns.args.seed), model, trained
    except SnnxError as exc:
        own = f"{model}_{method}"
        if own not in MODELS.names():
            raise
        log(f"  {model} + {method}: {exc.problem} → the method's own {own}")
        trained = anns.get(own, width, act)
        stats = anns.stats(trained) if entry.trait("needs_stats") else None
        return api.convert(trained.model, method=method, stats=stats, seed=anns.args.seed), own, trained


# -- agreement ------------------------------------------------------------------------------------
@dataclass
class Cell:
    """One (method, T) comparison of the device run with the CPU float64 run."""

    agree: float  # % of images with the same prediction
    max_delta: float  # max |Δ| over images and classes of the mean output up to T
    disagreeing: list[int] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)  # float64 top − runner-up of the disagreeing images
    noise: float = 0.0  # max |Δ| over the images whose predictions agree
    causes: list[str] = field(default_factory=list)  # per disagreeing image, what was measured
    explained: bool = True  # every disagreeing image is a near-tie or a single rounding-decided spike
    images: int = 0

    @property
    def ok(self) -> bool:
        return self.agree >= AGREEMENT or self.explained


def compare(device_out: torch.Tensor, reference: torch.Tensor) -> Cell:
    device_out, reference = device_out.double(), reference.double()
    same = device_out.argmax(1) == reference.argmax(1)
    delta = (device_out - reference).abs().amax(1)
    top2 = reference.topk(min(2, reference.shape[1]), dim=1).values
    margin = top2[:, 0] - top2[:, -1]
    wrong = (~same).nonzero().flatten().tolist()
    return Cell(agree=100.0 * float(same.double().mean()), max_delta=float(delta.max()), disagreeing=wrong,
                margins=[float(margin[i]) for i in wrong], noise=float(delta[same].max()) if bool(same.any()) else 0.0,
                explained=not wrong, images=len(same))


def neuron_traces(snn: nn.Module, images: torch.Tensor, index: int, T: int, device: torch.device,
                  dtype: torch.dtype) -> tuple[dict, torch.Tensor]:
    """({neuron layer: (input, output) per step, [steps, …] float64}, mean output up to T) of image ``index``
    of the batch ``images``, simulated to T alone."""
    batch = len(images)
    sim = Simulator(copy.deepcopy(snn), device=device, dtype=dtype)
    seen: dict[str, list] = {}

    def per_step(t: torch.Tensor, steps: int) -> torch.Tensor:
        rows = t.shape[0] // batch
        t = t.detach().reshape(rows, batch, *t.shape[1:])[:, index].double().cpu()
        return t.expand(steps, *t.shape[1:]) if rows != steps else t  # a time-invariant input: every step's

    def hook(name):
        def record(_module, inputs, out):
            steps = out.shape[0] // batch
            seen.setdefault(name, []).append((per_step(inputs[0], steps), per_step(out, steps)))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in sim.neurons]
    try:
        result = sim.run([(images, torch.zeros(batch, dtype=torch.long))], [T], keep_outputs=True)
    finally:
        for h in handles:
            h.remove()
    traces = {name: (torch.cat([i for i, _ in parts]), torch.cat([o for _, o in parts])) for name, parts in seen.items()}
    return traces, result.outputs[T][index]


def first_spike_difference(snn: nn.Module, images: torch.Tensor, index: int, T: int, device: torch.device,
                           batch_size: int) -> tuple[str, bool]:
    """(what was measured, whether it is a rounding-decided spike) for test image ``index``: the first step and
    neuron layer where the device float32 run and the CPU float64 run emit different spikes, how many neurons
    differ there and how closely their inputs up to that step still agree."""
    start = (index // batch_size) * batch_size
    batch = images[start:start + batch_size]
    (ours, out32), (ref, out64) = (neuron_traces(snn, batch, index - start, T, d, dt)
                                   for d, dt in ((device, torch.float32), (CPU, torch.float64)))
    if int(out32.argmax()) == int(out64.argmax()):
        return "not reproduced when simulated to this T alone", False
    steps = min(o.shape[0] for _, o in ref.values())
    for t in range(steps):
        for name in ref:  # module order: each layer before the layers it feeds
            a, b = ours[name][1][t], ref[name][1][t]
            scale = float(b.abs().max()) or 1.0
            differ = (a - b).abs() > 1e-4 * scale
            if bool(differ.any()):
                ia, ib = ours[name][0][:t + 1], ref[name][0][:t + 1]
                rel = float((ia - ib).abs().max()) / (float(ib.abs().max()) or 1.0)
                count = int(differ.sum())
                rounding = count <= MAX_FLIPS and rel <= INPUT_ROUNDING
                return (f"first spike difference at step {t + 1} in {name}: {count} of {differ.numel()} neurons, "
                        f"whose inputs up to then agree to {rel:.1e} (relative)"), rounding
    return "no spike differs: the readout alone", False


def simulate(snn: nn.Module, images: torch.Tensor, labels: torch.Tensor, time_steps: Sequence[int],
             device: torch.device, dtype: torch.dtype, batch_size: int):
    sim = Simulator(copy.deepcopy(snn), device=device, dtype=dtype)
    batches = [(images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    return sim.run(batches, time_steps, keep_outputs=True)


@dataclass
class Row:
    model: str
    method: str
    act: str
    cells: dict[int, Cell] = field(default_factory=dict)
    reason: str = ""  # why the method was not run on this model
    acc: dict[int, float] = field(default_factory=dict)  # the float64 reference's accuracy


def agreement_rows(anns: ANNs, nets, images, labels, time_steps, device, batch_size) -> list[Row]:
    rows = []
    for model, width in nets:
        for method in METHODS.names():
            act, accepted = method_act(method)
            if act is None:
                rows.append(Row(model, method, "-", reason="no registered activation is accepted"))
                continue
            began = time.perf_counter()
            try:
                snn, used, trained = convert(anns, model, width, method, act)
            except SnnxError as exc:
                rows.append(Row(model, method, act, reason=f"not applicable: {exc.problem}"))
                log(f"  {model} {method} (act={act}): not applicable — {exc.problem}")
                continue
            on_device = simulate(snn, images, labels, time_steps, device, torch.float32, batch_size)
            reference = simulate(snn, images, labels, time_steps, CPU, torch.float64, batch_size)
            row = Row(used, method, act, acc={T: reference.accuracy(T) for T in time_steps})
            for T in time_steps:
                row.cells[T] = cell = compare(on_device.outputs[T], reference.outputs[T])
                if cell.agree < AGREEMENT:
                    explain(cell, snn, images, T, device, batch_size)
            rows.append(row)
            log(f"  {used} {method} (act={act}, ANN {trained.test_acc:.1f}%): SNN {row.acc[time_steps[-1]]:.1f}% "
                f"at T={time_steps[-1]}, agreement ≥ {min(c.agree for c in row.cells.values()):.1f}% "
                f"({time.perf_counter() - began:.1f}s)")
    return rows


def agreement_table(rows: list[Row], time_steps: Sequence[int]) -> list[str]:
    """The table's lines: one per (model, method), each T's cell as `agree% max|Δ|`."""
    head = f"{'model':<13} {'method':<12} {'act':<7}" + "".join(f" | T={T:<13}" for T in time_steps)
    lines = [head, "-" * len(head)]
    for row in rows:
        start = f"{row.model:<13} {row.method:<12} {row.act:<7}"
        if row.reason:
            lines.append(f"{start} | {row.reason}")
            continue
        cells = "".join(f" | {c.agree:5.1f}{' ' if c.agree >= AGREEMENT else '*' if c.ok else '!'}{c.max_delta:9.2e}"
                        for c in (row.cells[T] for T in time_steps))
        lines.append(start + cells)
    return lines


def explain(cell: Cell, snn: nn.Module, images: torch.Tensor, T: int, device: torch.device, batch_size: int) -> None:
    """Measure, for each disagreeing image of ``cell``, whether it is a near-tie (its float64 margin no larger
    than the |Δ logits| float32 produced on the images that agree) or a rounding-decided spike."""
    explained = True
    for n, (index, margin) in enumerate(zip(cell.disagreeing, cell.margins)):
        if margin <= cell.noise:
            cell.causes.append(f"image {index}: near-tie, float64 margin {margin:.3g} ≤ the noise {cell.noise:.3g}")
            continue
        if n >= MAX_TRACED:
            cell.causes.append(f"image {index}: margin {margin:.3g}, not traced (more than {MAX_TRACED} images)")
            explained = False
            continue
        what, rounding = first_spike_difference(snn, images, index, T, device, batch_size)
        cell.causes.append(f"image {index}: margin {margin:.3g}; {what} → "
                           + ("a spike decided by rounding" if rounding else "NOT explained"))
        explained &= rounding
    cell.explained = explained


def reasons(rows: list[Row], time_steps: Sequence[int]) -> tuple[list[str], bool]:
    """(the lines that explain each cell below the threshold, whether every one of them is explained)."""
    lines, explained = [], True
    for row in rows:
        for T in time_steps:
            cell = row.cells.get(T)
            if cell is None or cell.agree >= AGREEMENT:
                continue
            lines.append(f"  {row.model} {row.method} T={T}: {len(cell.disagreeing)} of "
                         f"{cell.images} images disagree "
                         f"({cell.agree:.1f}%): " + ("explained" if cell.explained else "NOT explained"))
            lines += [f"    {cause}" for cause in cell.causes]
            explained &= cell.explained
    return lines, explained


# -- throughput -----------------------------------------------------------------------------------
def synchronised(fn: Callable, device: torch.device) -> Callable:
    def run():
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out
    return run


def images_per_s(times: list[float], n: int) -> float:
    return n / median(times)


def throughput(anns: ANNs, model: str, width: float, images: torch.Tensor, labels: torch.Tensor,
               device: torch.device, rounds: int, train_batches: int) -> list[str]:
    """The throughput lines of one net (see the module doc)."""
    trained = anns.get(model, width, "csqcfs")
    snn = api.convert(trained.model, method="qcfs")
    x, y = images.to(device), labels.to(device)
    n = len(x)
    ann = copy.deepcopy(trained.model).to(device).eval()
    auto = Simulator(copy.deepcopy(snn), device=device)

    def ann32():
        with torch.no_grad():
            for _ in range(T_DENSE):
                ann(x)

    fns = {"ann32": synchronised(ann32, device),
           "snn": synchronised(lambda: auto.run([(x, y)], [T_DENSE]), device)}
    times = interleaved(fns, rounds)
    sim_ips, ann_ips = images_per_s(times["snn"], n), images_per_s(times["ann32"], n)
    lines = [f"  sim_images_per_s_T32={sim_ips:.1f}  (qcfs conversion of the csqcfs ANN, batch {n}, chunk "
             f"{auto.chunk} (auto), float32)",
             f"  ann32_images_per_s={ann_ips:.1f}  (32 forwards of that ANN, eval mode)",
             f"  dense_ratio={ratio(times, 'snn', 'ann32'):.3f}  (simulation / 32 forwards, median of "
             f"{rounds} round(s))"]

    relu_ips, cs_ips, train_r = train_throughput(anns, model, width, device, rounds, train_batches)
    lines += [f"  train_images_per_s_relu={relu_ips:.1f}",
              f"  train_images_per_s_csqcfs={cs_ips:.1f}",
              f"  train_ratio={train_r:.3f}  (CS-QCFS / ReLU training time, {train_batches} batches of "
              f"{anns.args.train_batch}, SGD, same initial weights and batches)"]

    sims = {c: Simulator(copy.deepcopy(snn), device=device, chunk=c) for c in CHUNKS}
    ctimes = interleaved({c: synchronised(lambda s=s: s.run([(x, y)], [T_DENSE]), device) for c, s in sims.items()},
                         rounds)
    per_chunk = {c: images_per_s(ts, n) for c, ts in ctimes.items()}
    best = max(per_chunk, key=per_chunk.get)
    auto_ips = per_chunk.get(auto.chunk, sim_ips)
    shown = ", ".join(f"{c}={v:.1f}" for c, v in per_chunk.items())
    lines.append(f"  chunk_auto={auto.chunk} chunk_best={best} (images/s each: {shown}; auto at "
                 f"{100 * auto_ips / per_chunk[best]:.0f}% of the best)")
    return lines


def train_throughput(anns: ANNs, model: str, width: float, device: torch.device, rounds: int,
                     batches: int) -> tuple[float, float, float]:
    """(ReLU images/s, CS-QCFS images/s, CS-QCFS / ReLU time): SGD steps from the same initial weights on the
    same augmented batches, interleaved in rounds."""
    args = anns.args
    relu_cfg = ann_config(args, anns.data_root, model, width, "relu")
    cs_cfg = ann_config(args, anns.data_root, model, width, "csqcfs")
    torch.manual_seed(args.seed)
    relu = pipeline.build_model(relu_cfg)
    csqcfs = pipeline.build_model(cs_cfg)
    csqcfs.load_state_dict(relu.state_dict(), strict=False)  # the same conv / linear / BN weights
    data = api.build_dataset(relu_cfg, "train")
    loader = torch.utils.data.DataLoader(data, batch_size=args.train_batch, shuffle=True,
                                         generator=torch.Generator().manual_seed(args.seed))
    held = []
    for images, labels in loader:
        held.append((images.to(device), labels.to(device)))
        if len(held) == batches:
            break
    seen = sum(len(b[1]) for b in held)

    def steps(initial: nn.Module) -> Callable:
        def run():
            net = copy.deepcopy(initial).to(device).train()
            opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
            loss_fn = nn.CrossEntropyLoss()
            for images, labels in held:
                loss = loss_fn(net(images), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return synchronised(run, device)

    times = interleaved({"relu": steps(relu), "csqcfs": steps(csqcfs)}, rounds)
    return images_per_s(times["relu"], seen), images_per_s(times["csqcfs"], seen), ratio(times, "csqcfs", "relu")


# -- main -----------------------------------------------------------------------------------------
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, cuDNN " \
               f"{torch.backends.cudnn.version()}, TF32 convs {torch.backends.cudnn.allow_tf32}, TF32 matmuls " \
               f"{torch.backends.cuda.matmul.allow_tf32})"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        cpu = platform.processor() or "?"
    return f"CPU {cpu}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda or cuda:<i>")
    parser.add_argument("--train-images", type=int, default=None, help="generated training images "
                        f"(default {SIZES['train_images'][0]} on CUDA, {SIZES['train_images'][1]} on CPU)")
    parser.add_argument("--test-images", type=int, default=None, help="generated test images, all simulated "
                        f"(default {SIZES['test_images'][0]} on CUDA, {SIZES['test_images'][1]} on CPU)")
    parser.add_argument("--max-T", type=int, default=None, help="the sweep is T = 1, 2, 4, … up to this "
                        f"(default {SIZES['max_T'][0]})")
    parser.add_argument("--batch-size", type=int, default=None, help="simulation batch, and the throughput batch "
                        f"(default {SIZES['batch_size'][0]} on CUDA, {SIZES['batch_size'][1]} on CPU)")
    parser.add_argument("--train-batch", type=int, default=64, help="training batch size (default 64)")
    parser.add_argument("--train-batches", type=int, default=None, help="batches per timed training run "
                        f"(default {SIZES['train_batches'][0]} on CUDA, {SIZES['train_batches'][1]} on CPU)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per comparison "
                        f"(default {SIZES['rounds'][0]} on CUDA, {SIZES['rounds'][1]} on CPU)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "outputs" / "gpu_check",
                        help="where the data and the ANN cache go (default outputs/gpu_check)")
    parser.add_argument("--keep-cache", action="store_true",
                        help="reuse the ANNs a previous run trained in --workdir (default: train them again)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run of the whole check)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return args


def resolve_sizes(args: argparse.Namespace, device: torch.device) -> None:
    column = 2 if args.quick else (0 if device.type == "cuda" else 1)
    for name, values in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, values[column])
    for name in (*SIZES, "train_batch"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(args, name)}")
    args.workdir = Path(args.workdir).resolve()


def sweep(max_T: int) -> list[int]:
    steps = [2 ** i for i in range(int(math.log2(max_T)) + 1)]
    return steps + ([max_T] if steps[-1] != max_T else [])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda: this machine has no usable CUDA device (use --device cpu or auto)")
        torch.empty(1, device=device)
    except (RuntimeError, ValueError) as exc:
        raise SystemExit(f"--device {args.device}: {str(exc).splitlines()[0]}") from None
    resolve_sizes(args, device)
    began = time.perf_counter()
    time_steps = sweep(args.max_T)
    log("snnx device check" + (" (--quick)" if args.quick else ""))
    log(f"device: {device} = {device_name(device)}")
    log(f"torch {torch.__version__}, python {platform.python_version()}, threads {torch.get_num_threads()} "
        f"(interop {torch.get_num_interop_threads()}), cores {os.cpu_count()}, loadavg "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    log(f"sizes: {args.train_images} train / {args.test_images} test images, T = {time_steps}, simulation batch "
        f"{args.batch_size}, train batch {args.train_batch}, {args.rounds} timed round(s); workdir {args.workdir}")

    data_root = args.workdir / "data"
    write_cifar10(data_root, args.train_images, args.test_images, args.seed)
    if not args.keep_cache:
        shutil.rmtree(args.workdir / "cache", ignore_errors=True)
    anns = ANNs(args, data_root, device)
    test = api.build_dataset(ann_config(args, data_root, "vgg11", 0.25, "relu"), "test")
    images = torch.stack([test[i][0] for i in range(len(test))])
    labels = torch.tensor([int(test[i][1]) for i in range(len(test))])

    log("")
    log(f"[agreement] every method on {device} (float32) vs the same SNN on the CPU in float64, "
        f"{len(images)} test images")
    rows = agreement_rows(anns, NETS, images, labels, time_steps, device, args.batch_size)
    log("")
    log(f"agreement with the CPU float64 reference: % of images with the same prediction, max |Δ logits| "
        f"(mean output up to T); below {AGREEMENT:g}%: * explained by rounding, ! not explained (see below)")
    for line in agreement_table(rows, time_steps):
        log(line)
    explanation, explained = reasons(rows, time_steps)
    if explanation:
        log(f"below {AGREEMENT:g}%:")
        for line in explanation:
            log(line)
    log("ANN test accuracy: " + ", ".join(f"{m}/{a} {t.test_acc:.1f}%" for (m, _, a), t in anns._done.items()))

    for model, width in NETS:
        log("")
        log(f"[throughput] {model} (width {width}) on {device}")
        batch = min(args.batch_size, len(images))
        for line in throughput(anns, model, width, images[:batch], labels[:batch], device, args.rounds,
                               args.train_batches):
            log(line)
    log("")
    ok = explained
    log(f"total {time.perf_counter() - began:.0f}s; loadavg at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    log(f"agreement: {'PASS' if ok else 'FAIL'} (every method ≥ {AGREEMENT:g}% at every T"
        f"{', or a disagreement measured to be rounding, listed above' if explanation and ok else ''})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
