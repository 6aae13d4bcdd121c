#!/usr/bin/env python
"""Benchmark of the snnx simulation engine (issue 5), side by side in one process.

    python scripts/bench_sim.py --quick        # < 3 min on 2 cores (make bench)
    python scripts/bench_sim.py                # full mode: more repeats, wider nets
    python scripts/bench_sim.py --quick --only train   # the train_ratio section alone
    python scripts/bench_sim.py --quick --only neurons # msat_ratio and allint_ratio alone

Prints every measurement with its details, then, as its last line::

    dense_ratio=… sweep_ratio=… mem_ratio=… sj_ratio=… msat_ratio=… allint_ratio=… train_ratio=…

* dense_ratio: simulating T = 32 (engine defaults: chunk=auto, spike/SOP
  accounting on, record_layers off) / 32 plain ANN forwards of the ANN that
  was converted (eval mode, PyTorch defaults), same batch (64) and threads;
  VGG-11 (QCFS, width 0.25) and ResNet-20 on 32×32, the worse of the two.
* sweep_ratio: the sweep T ∈ {1, 2, 4, …, 64} in one run / one T = 64 run.
* mem_ratio: peak memory at T = 256 / at T = 16: growth of the peak resident
  set over the pre-simulation baseline, each in a fresh subprocess (the peak
  is reset with /proc/self/clear_refs and read from VmHWM, so it sees torch's
  allocations, which tracemalloc does not; the baseline is taken after the
  model, the simulator and the input exist).
* sj_ratio: SpikingJelly 2.0.0 (``RateCodingRecipe``, step-by-step, its
  default single-step mode) simulating the same ReLU ANN / snnx simulating
  it (max-norm conversion), T = 32. ``nan`` when spikingjelly is absent.
* msat_ratio: simulating T = 32 with MSAT neurons (He et al., the embedded
  preset's settings: DTT + DET, spike confidence 0.683 in the last layer) /
  with IF neurons (max-norm), the same ReLU LeNet (mnist5k, width 0.25),
  the same 250 test images (one batch).
* allint_ratio: the all-integer SNN (signed dual-threshold neurons, float
  mode) of a ternary quant LeNet of the same architecture / that IF net.
  Integer mode (int64 convolutions) is printed beside it, for information.
* train_ratio: one CS-QCFS training epoch / one ReLU epoch, LeNet on
  mnist5k, same initial weights, same batches (a minimal SGD loop); both
  eager. The two epochs run in lockstep, the models taking turns at every
  batch, and each model's steps are summed: whole epochs one after the other
  see the load change between them (README, Benchmark); they are printed
  beside it for information, as are the same epochs under
  torch.compile (train.compile=true).

Times are wall-clock. The compared callables run in rounds (one of each
per round, the order rotating, after one warm-up round); a ratio is the
median over rounds of the ratio within the round — on a shared machine the
load drifts, and both sides of a round run under the same load. The ratio
of the minima is printed next to it. Random weights are fine for timing;
QCFS thresholds are set from the batch's activations so that layers spike
at realistic rates.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # torch.profiler: no start/stop chatter

import torch  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from snnx.activations import make_act_factory  # noqa: E402
from snnx.convert import convert  # noqa: E402
from snnx.models import create_model  # noqa: E402
from snnx.sim import Simulator  # noqa: E402

CPU = torch.device("cpu")
BATCH = 64
T_DENSE = 32
QCFS_CONVERT = {"maxpool": "avg", "v_init": None}


# -- helpers ------------------------------------------------------------------------
def log(msg: str = "") -> None:
    print(msg, flush=True)


def interleaved(fns: dict, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall-clock seconds of each callable, run in rotating order ``repeats`` times (after warm-up)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            began = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - began)
    return times


def stat(ts: list[float]) -> str:
    s = sorted(ts)
    return f"min {s[0]:.3f}s median {s[len(s) // 2]:.3f}s (n={len(s)})"


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def ratio(times: dict, a: str, b: str) -> float:
    """time(a) / time(b): the median over rounds of the ratio within a round (a and b ran back to back).

    On a shared machine the load drifts; a ratio taken within a round sees
    both sides under the same load, and the median drops rounds where a
    burst hit one side only.
    """
    return median([ta / tb for ta, tb in zip(times[a], times[b])])


def ratio_of_minima(times: dict, a: str, b: str) -> float:
    return min(times[a]) / min(times[b])


def ratios(times: dict, a: str, b: str) -> str:
    return f"{ratio(times, a, b):.3f} (ratio of minima {ratio_of_minima(times, a, b):.3f})"


def machine() -> dict:
    model = "?"
    try:
        model = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return {"nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "cpu": model,
            "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def calibrate_qcfs(ann: nn.Module, x: torch.Tensor, q: float = 0.99) -> None:
    """Set every QCFS λ to the q-quantile of its positive input on ``x`` (as training would, roughly)."""
    from snnx.activations import QCFS

    sites = [m for m in ann.modules() if isinstance(m, QCFS)]
    handles, seen = [], {}
    for m in sites:
        handles.append(m.register_forward_hook(lambda mod, inp, out: seen.__setitem__(mod, inp[0].detach())))
    # One site at a time, in order, so each λ is set before the next layer's input is seen.
    with torch.no_grad():
        for m in sites:
            ann(x)
            z = seen[m].flatten()
            z = z[z > 0]
            sample = z[torch.randperm(z.numel(), generator=torch.Generator().manual_seed(0))[:200_000]]
            m.threshold.fill_(float(torch.quantile(sample, q)) if sample.numel() else 1.0)
    for h in handles:
        h.remove()


def build(name: str, width: float, act: str = "qcfs", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    factory = make_act_factory(act, L=4) if act != "relu" else make_act_factory("relu")
    return create_model(name, in_channels=3, image_size=32, num_classes=10, act_factory=factory, width=width).eval()


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, 3, 32, 32, generator=g), torch.randint(0, 10, (BATCH,), generator=g)


def qcfs_setup(name: str, width: float):
    """(ANN, its QCFS conversion, the conversion's label, images, labels) on the benchmark batch."""
    x, y = batch()
    ann = build(name, width)
    calibrate_qcfs(ann, x)
    snn, label = convert(ann, method="qcfs", stats=None, convert=QCFS_CONVERT)
    return ann, snn, label, x, y


def ann_forwards(ann: nn.Module, x: torch.Tensor, n: int):
    def run():
        with torch.no_grad():
            for _ in range(n):
                ann(x)
    return run


def simulate(sim: Simulator, x, y, steps, **kw):
    return lambda: sim.run([(x, y)], steps, **kw)


# -- dense_ratio -----------------------------------------------------------------------
def bench_dense(name: str, width: float, repeats: int, extras: bool) -> float:
    ann, snn, label, x, y = qcfs_setup(name, width)
    sim = Simulator(copy.deepcopy(snn), device=CPU)
    result = sim.run([(x, y)], [T_DENSE])
    per = result.per_image(T_DENSE)
    log(f"[dense] {name} width {width}: {sum(p.numel() for p in ann.parameters()):,} parameters, "
        f"batch {BATCH}, T = {T_DENSE}, conversion '{label}', chunk {sim.chunk} (auto), "
        f"memory format {str(sim.memory_format).split('.')[-1]} (auto); spikes/neuron {per['spikes_per_neuron']:.2f}, "
        f"SOPs/image {per['sops']:.3g}, MACs/image {per['macs']:.3g}")
    fns = {"ann": ann_forwards(ann, x, T_DENSE), "snn": simulate(sim, x, y, [T_DENSE])}
    if extras:
        fns["snn_no_accounting"] = simulate(sim, x, y, [T_DENSE], accounting=False)
        fns["snn_record_layers"] = simulate(sim, x, y, [T_DENSE], ann=ann, record_layers=True)
        ann_cl = copy.deepcopy(ann).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        fns["ann_channels_last"] = ann_forwards(ann_cl, x_cl, T_DENSE)
        fns["snn_contiguous"] = simulate(Simulator(copy.deepcopy(snn), device=CPU, memory_format="contiguous"),
                                         x, y, [T_DENSE])
        # sim.compile=true: the IF steps of wide layers fused by torch.compile (compiled in the warm-up round).
        fns["snn_compiled"] = simulate(Simulator(copy.deepcopy(snn), device=CPU, compile=True), x, y, [T_DENSE])
    times = interleaved(fns, repeats)
    for k, v in times.items():
        log(f"  {k:22s} {stat(v)}")
    dense = ratio(times, "snn", "ann")
    log(f"  ratio snn / ann (plain forward): {ratios(times, 'snn', 'ann')}")
    if extras:
        log(f"  ratio snn / ann in channels_last (the engine's layout): {ratios(times, 'snn', 'ann_channels_last')}")
        log(f"  ratio snn (contiguous layout) / ann: {ratios(times, 'snn_contiguous', 'ann')}")
        log(f"  accounting cost, snn / snn without counters: {ratios(times, 'snn', 'snn_no_accounting')}")
        log(f"  record_layers cost, with / without: {ratios(times, 'snn_record_layers', 'snn')}")
        log(f"  sim.compile=true, compiled / eager: {ratios(times, 'snn_compiled', 'snn')}")
    return dense


def bench_chunks(name: str, width: float, repeats: int, chunks=(1, 2, 4, 8)) -> None:
    ann, snn, _, x, y = qcfs_setup(name, width)
    fns = {"ann": ann_forwards(ann, x, T_DENSE)}
    for c in chunks:
        fns[f"chunk={c}"] = simulate(Simulator(copy.deepcopy(snn), device=CPU, chunk=c), x, y, [T_DENSE])
    times = interleaved(fns, repeats)
    log(f"[chunk] {name} width {width}, T = {T_DENSE}: ratio to {T_DENSE} ANN forwards per sim.chunk")
    for c in chunks:
        log(f"  chunk={c:<3d} {stat(times[f'chunk={c}'])}  ratio {ratios(times, f'chunk={c}', 'ann')}")


# -- sweep_ratio -----------------------------------------------------------------------
def bench_sweep(name: str, width: float, repeats: int) -> float:
    ann, snn, _, x, y = qcfs_setup(name, width)
    sim = Simulator(snn, device=CPU)
    sweep = [2 ** i for i in range(7)]
    times = interleaved({"sweep": simulate(sim, x, y, sweep), "T=64": simulate(sim, x, y, [64])}, repeats)
    r = ratio(times, "sweep", "T=64")
    log(f"[sweep] {name} width {width}, batch {BATCH}: T in {sweep} in one run vs one T=64 run")
    for k, v in times.items():
        log(f"  {k:8s} {stat(v)}")
    log(f"  ratio {ratios(times, 'sweep', 'T=64')}")
    return r


# -- mem_ratio ---------------------------------------------------------------------------
def _status_kb() -> dict:
    return {k: int(v) for k, v in re.findall(r"(VmRSS|VmHWM):\s+(\d+) kB", Path("/proc/self/status").read_text())}


def mem_child(T: int, name: str, width: float) -> None:
    """In a fresh process: peak RSS growth (kB) of one simulation to T over the pre-run baseline."""
    ann, snn, _, x, y = qcfs_setup(name, width)
    sim = Simulator(snn, device=CPU)
    del ann
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        method = "VmHWM after clear_refs"
    except OSError:
        method = "ru_maxrss (peak not resettable)"
    before = _status_kb()
    began = time.perf_counter()
    sim.run([(x, y)], [T])
    seconds = time.perf_counter() - began
    after = _status_kb()
    if method.startswith("ru_maxrss"):
        import resource

        after["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"T": T, "baseline_kb": before["VmRSS"], "peak_kb": after["VmHWM"],
                      "growth_kb": after["VmHWM"] - before["VmRSS"], "method": method, "seconds": seconds}))


def bench_mem(name: str, width: float, steps: list[int]) -> float:
    rows = {}
    for T in steps:
        out = subprocess.run([sys.executable, __file__, "--mem-child", str(T), "--net", name, "--width", str(width),
                              "--threads", str(torch.get_num_threads())],
                             capture_output=True, text=True, check=True)
        rows[T] = json.loads(out.stdout.strip().splitlines()[-1])
    log(f"[mem] {name} width {width}, batch {BATCH}, chunk auto; peak RSS growth over the pre-run baseline, "
        f"fresh process per T ({rows[steps[0]]['method']})")
    for T, r in rows.items():
        log(f"  T={T:<4d} baseline {r['baseline_kb'] / 1024:8.1f} MiB  peak {r['peak_kb'] / 1024:8.1f} MiB  "
            f"growth {r['growth_kb'] / 1024:7.1f} MiB  ({r['seconds']:.2f}s)")
    m = rows[steps[-1]]["growth_kb"] / max(rows[steps[0]]["growth_kb"], 1)
    log(f"  ratio growth T={steps[-1]} / T={steps[0]}: {m:.3f}; whole-process peak ratio "
        f"{rows[steps[-1]]['peak_kb'] / rows[steps[0]]['peak_kb']:.3f}")
    return m


# -- sj_ratio -----------------------------------------------------------------------------
def bench_sj(name: str, width: float, repeats: int) -> float:
    os.environ.setdefault("TQDM_DISABLE", "1")  # its calibration progress bar
    try:
        import spikingjelly
        from spikingjelly.activation_based import functional
        from spikingjelly.activation_based.ann2snn import Converter, RateCodingRecipe
    except ImportError as err:
        log(f"[sj] spikingjelly is not installed ({err}); install it with `make bench` "
            "(pip install --no-deps spikingjelly==2.0.0 plus the `bench` extra). sj_ratio=nan")
        return float("nan")
    try:
        from loguru import logger

        logger.disable("spikingjelly")
    except ImportError:
        pass
    from snnx.calibration import calibrate

    x, y = batch()
    ann = build(name, width, act="relu")
    recipe = RateCodingRecipe(dataloader=[(x, y)], mode="Max")
    sj_net = Converter(recipe, device="cpu").convert(copy.deepcopy(ann)).eval()
    stats = calibrate(ann, [x], percentile=99.9, num_batches=1, device=CPU)
    snn, label = convert(ann, method="maxnorm", stats=stats, convert={"maxpool": "avg", "v_init": None})
    sim = Simulator(snn, device=CPU)

    def run_sj():
        with torch.no_grad():
            out = torch.zeros(BATCH, 10)
            for _ in range(T_DENSE):
                out += sj_net(x)
            functional.reset_net(sj_net)
        return out

    agree = float((run_sj().argmax(1) == _snnx_logits(sim, x, T_DENSE).argmax(1)).float().mean())
    times = interleaved({"spikingjelly": run_sj, "snnx": simulate(sim, x, y, [T_DENSE])}, repeats)
    r = ratio(times, "spikingjelly", "snnx")
    log(f"[sj] spikingjelly {spikingjelly.__version__ if hasattr(spikingjelly, '__version__') else '2.0.0'} "
        f"RateCodingRecipe(mode='Max') step-by-step vs snnx '{label}' (chunk auto, accounting on), "
        f"{name} width {width} with ReLU, batch {BATCH}, T = {T_DENSE}; "
        f"predictions agree on {100 * agree:.0f}% of the batch")
    for k, v in times.items():
        log(f"  {k:13s} {stat(v)}")
    log(f"  ratio spikingjelly / snnx {ratios(times, 'spikingjelly', 'snnx')}")
    return r


def _snnx_logits(sim: Simulator, x: torch.Tensor, T: int) -> torch.Tensor:
    readout = [m for m in sim.snn.modules() if isinstance(m, nn.Linear)][-1]
    outs = []
    handle = readout.register_forward_hook(lambda m, i, o: outs.append(o.detach().clone()))
    try:
        sim.run([(x, torch.zeros(x.shape[0], dtype=torch.long))], [T])
    finally:
        handle.remove()
    return torch.cat([o.view(-1, x.shape[0], o.shape[-1]) for o in outs]).sum(0)


# -- msat_ratio, allint_ratio ---------------------------------------------------------------
def _mnist_lenet(act: str, **kw) -> nn.Module:
    """The embedded presets' LeNet (mnist5k, width 0.25), random weights and BN statistics."""
    torch.manual_seed(0)
    model = create_model("lenet", in_channels=1, image_size=28, num_classes=10, act_factory=make_act_factory(act, **kw),
                         width=0.25)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _test_images(n: int):
    from snnx.data import build_dataset

    images, labels = build_dataset("mnist5k", "test").tensors
    return images[:n], labels[:n]


def _spikes_per_neuron(sim: Simulator, x, y, T: int) -> float:
    return sim.run([(x, y)], [T]).per_image(T)["spikes_per_neuron"]


def bench_neurons(repeats: int, n: int) -> tuple[float, float]:
    """(msat_ratio, allint_ratio): MSAT and the all-integer signed neurons against the IF neuron (max-norm)."""
    from snnx.activations.ternary import apply_ternary
    from snnx.calibration import calibrate

    x, y = _test_images(n)
    relu = _mnist_lenet("relu")
    stats = calibrate(relu, [x], percentile=99.9, num_batches=1, device=CPU)
    maxnorm, _ = convert(relu, method="maxnorm", stats=stats, convert={})
    # The embedded MSAT preset's conversion: Table 1 (VGG16) hyperparameters, confidence 0.683 in the last layer.
    msat, msat_label = convert(relu, method="msat", stats=stats, convert={"confidence_last": 0.683})
    quant = apply_ternary(_mnist_lenet("quant", k=0)).eval()
    allint, allint_label = convert(quant, method="allint", stats=None, convert={})
    allint_int, _ = convert(quant, method="allint", stats=None, convert={"integer": True})
    sims = {"if": Simulator(maxnorm, device=CPU), "msat": Simulator(msat, device=CPU),
            "allint": Simulator(allint, device=CPU), "allint_integer": Simulator(allint_int, device=CPU)}
    rates = {k: _spikes_per_neuron(s, x, y, T_DENSE) for k, s in sims.items()}
    times = interleaved({k: simulate(s, x, y, [T_DENSE]) for k, s in sims.items()}, repeats)
    log(f"[neurons] LeNet width 0.25 on {n} mnist5k test images (one batch), T = {T_DENSE}, chunk auto, accounting "
        f"on; IF: max-norm of a ReLU ANN; MSAT: '{msat_label}' on the same ANN; all-integer: '{allint_label}' of a "
        f"ternary quant ANN of the same architecture (float mode; integer mode, int64 convolutions, for information)")
    for k, v in times.items():
        log(f"  {k:15s} {stat(v)}  spikes/neuron {rates[k]:.2f}")
    log(f"  ratio msat / if {ratios(times, 'msat', 'if')}")
    log(f"  ratio allint / if {ratios(times, 'allint', 'if')}")
    log(f"  ratio allint integer mode / if {ratios(times, 'allint_integer', 'if')}")
    return ratio(times, "msat", "if"), ratio(times, "allint", "if")


# -- train_ratio ---------------------------------------------------------------------------
def bench_train(repeats: int, limit: int | None) -> float:
    from snnx.data import build_dataset

    data = build_dataset("mnist5k", "train")
    images, labels = data.tensors if hasattr(data, "tensors") else zip(*[data[i] for i in range(len(data))])
    if limit:
        images, labels = images[:limit], labels[:limit]
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    images, labels = images[order], labels[order]

    def make(act):
        torch.manual_seed(0)
        factory = make_act_factory("relu") if act == "relu" else make_act_factory("csqcfs", L=4, init_threshold=4.0)
        return create_model("lenet", in_channels=1, image_size=28, num_classes=10, act_factory=factory)

    relu = make("relu")
    csqcfs = make("csqcfs")
    csqcfs.load_state_dict(relu.state_dict(), strict=False)  # same conv/linear/BN weights

    loss_fn = nn.CrossEntropyLoss()

    def trainee(initial):
        """A fresh copy of ``initial`` in train mode, and its optimizer."""
        model = copy.deepcopy(initial).train()
        return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    def sgd_step(net, opt, i):
        loss = loss_fn(net(images[i:i + 64]), labels[i:i + 64])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def epoch(initial, n=len(images), compiled=False):
        def run():
            model, opt = trainee(initial)
            net = torch.compile(model) if compiled else model  # as train.compile=true does
            for i in range(0, n, 64):
                sgd_step(net, opt, i)
        return run

    def lockstep(n=len(images)):
        """One epoch of each model, step by step side by side: per model, the sum of its steps' seconds.

        The two models take turns at every batch (the one to go first alternating), so a drift of the
        machine's load over the epoch reaches both sums alike; each step is the same minimal SGD step
        as in ``epoch``.
        """
        runs = {"relu": trainee(relu), "csqcfs": trainee(csqcfs)}
        spent = {name: 0.0 for name in runs}
        for step, i in enumerate(range(0, n, 64)):
            for name in (("relu", "csqcfs") if step % 2 == 0 else ("csqcfs", "relu")):
                began = time.perf_counter()
                sgd_step(*runs[name], i)
                spent[name] += time.perf_counter() - began
        return spent

    log(f"[train] LeNet on mnist5k ({len(images)} images, batch 64, SGD), one epoch, CS-QCFS "
        f"(L=4, channel-wise, softplus) vs ReLU, same initial weights")
    lockstep(256)  # warm-up: numba kernels loaded, allocator primed
    steps = [lockstep() for _ in range(repeats)]
    times = {name: [s[name] for s in steps] for name in ("relu", "csqcfs")}
    r = ratio(times, "csqcfs", "relu")
    for k, v in times.items():
        log(f"  {k:7s} {stat(v)}  (the epoch's steps, run side by side with the other model's)")
    log(f"  ratio csqcfs / relu {ratios(times, 'csqcfs', 'relu')}")
    whole = interleaved({"relu": epoch(relu), "csqcfs": epoch(csqcfs)}, max(1, repeats // 2), warmup=0)
    log(f"  whole epochs one after the other (for information): relu {stat(whole['relu'])}, "
        f"csqcfs {stat(whole['csqcfs'])}, ratio {ratios(whole, 'csqcfs', 'relu')}")
    # train.compile=true (informational; the headline ratio is eager vs eager). Compiled in the warm-up round.
    try:
        began = time.perf_counter()
        ctimes = interleaved({"relu": epoch(relu), "relu_compiled": epoch(relu, compiled=True),
                              "csqcfs_compiled": epoch(csqcfs, compiled=True)}, repeats)
    except Exception as err:  # no C++ compiler, unsupported platform, ...
        log(f"  train.compile: torch.compile failed ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
    else:
        log(f"  train.compile=true (torch.compile of the training forward; warm-up round with compilation "
            f"included {time.perf_counter() - began - sum(map(sum, ctimes.values())):.0f}s):")
        for k in ("relu_compiled", "csqcfs_compiled"):
            log(f"  {k:15s} {stat(ctimes[k])}")
        log(f"  ratio csqcfs compiled / relu compiled {ratios(ctimes, 'csqcfs_compiled', 'relu_compiled')}")
        log(f"  ratio csqcfs compiled / relu eager {ratios(ctimes, 'csqcfs_compiled', 'relu')}")
    # Where the difference goes: the activation's own forward and backward (torch.profiler, 10 batches).
    from torch.profiler import ProfilerActivity, profile

    for name, model in (("relu", relu), ("csqcfs", csqcfs)):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            epoch(model, 640)()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        act = sum(e.cpu_time_total for e in events if e.key in (
            "_QuantisedClipFn", "_QuantisedClipFnBackward", "aten::relu", "aten::threshold_backward"))
        log(f"  profile {name:7s}: activation forward+backward {act / 1e6:.2f}s of {total / 1e6:.2f}s CPU "
            f"({100 * act / max(total, 1):.0f}%)")
    return r


# -- main ------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller nets (< 3 min on 2 cores)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, = cores)")
    parser.add_argument("--only", choices=("train", "neurons"), default=None,
                        help="run one section only (its ratio; the others print nan)")
    parser.add_argument("--mem-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--net", default="vgg11", help=argparse.SUPPRESS)
    parser.add_argument("--width", type=float, default=0.25, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mem_child is not None:
        mem_child(args.mem_child, args.net, args.width)
        return

    began = time.perf_counter()
    info = machine()
    log("snnx simulation benchmark" + (" (--quick)" if args.quick else " (full)"))
    log("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    try:
        log(f"oneDNN: {torch.backends.mkldnn.is_available()}, MKL: {torch.backends.mkl.is_available()}")
    except AttributeError:
        pass
    quick = args.quick
    reps = 5 if quick else 9
    resnet_width = 0.5 if quick else 1.0
    if args.only == "train":
        train = bench_train(5 if quick else 7, 2000 if quick else None)
        log(f"total {time.perf_counter() - began:.0f}s")
        log(f"dense_ratio=nan sweep_ratio=nan mem_ratio=nan sj_ratio=nan msat_ratio=nan allint_ratio=nan "
            f"train_ratio={train:.3f}")
        return
    if args.only == "neurons":
        msat, allint = bench_neurons(3 if quick else reps, 250 if quick else 1000)
        log(f"total {time.perf_counter() - began:.0f}s")
        log(f"dense_ratio=nan sweep_ratio=nan mem_ratio=nan sj_ratio=nan msat_ratio={msat:.3f} "
            f"allint_ratio={allint:.3f} train_ratio=nan")
        return
    dense_vgg = bench_dense("vgg11", 0.25, reps, extras=True)
    dense_resnet = bench_dense("resnet20", resnet_width, reps, extras=not quick)
    if not quick:
        bench_chunks("vgg11", 0.25, reps)
        bench_chunks("resnet20", resnet_width, reps)
    else:
        bench_chunks("vgg11", 0.25, 3)
    dense = max(dense_vgg, dense_resnet)
    log(f"[dense] worse of the two nets: {dense:.3f} (vgg11 {dense_vgg:.3f}, resnet20 {dense_resnet:.3f})")
    sweep = bench_sweep("vgg11", 0.25, reps)
    mem = bench_mem("vgg11", 0.25, [16, 256] if quick else [16, 64, 256, 512])
    sj = bench_sj("vgg11", 0.25, reps)
    msat, allint = bench_neurons(3 if quick else reps, 250 if quick else 1000)
    train = bench_train(5 if quick else 7, 2000 if quick else None)
    log(f"total {time.perf_counter() - began:.0f}s; loadavg at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    fmt = lambda v: "nan" if v != v else f"{v:.3f}"  # noqa: E731
    log(f"dense_ratio={fmt(dense)} sweep_ratio={fmt(sweep)} mem_ratio={fmt(mem)} sj_ratio={fmt(sj)} "
        f"msat_ratio={fmt(msat)} allint_ratio={fmt(allint)} train_ratio={fmt(train)}")


if __name__ == "__main__":
    main()
