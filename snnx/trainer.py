"""ANN training: one epoch loop with exact resume, per-epoch CSV, NaN guard.

Everything the next epoch depends on (weights, optimizer and scheduler state,
the RNG states and the data-order generator) is saved atomically after each
completed epoch in ``last.pt``; a rerun of the same command resumes from it
and ends with the same weights as an uninterrupted run.

Under torchrun (``train.distributed=true``) the same loop runs on every rank
with the model in DistributedDataParallel; ``snnx.distributed`` says how the
global batch is shared and why the result matches one process. Only rank 0
evaluates and writes; every rank reads the same ``last.pt`` to resume.
"""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from snnx.activations.base import Activation
from snnx.artifacts import atomic_save, load_checkpoint, write_csv
from snnx.distributed import Context, decorrelate_rng, wrap
from snnx.config import registries
from snnx.errors import SnnxError
from snnx.preemption import Preempted, StopSignals
from snnx.progress import track
from snnx.seeding import seed_everything


def capture_rng() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_pos": random.getstate()[2], "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
             "numpy_pos": int(np.random.get_state()[2])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, with where a rerun of the same command resumes: ``resume_epoch`` (1-based) of
    stage ``stage_name``'s ``epochs``; None when no epoch's checkpoint was saved (the rerun starts over)."""

    def __init__(self, stage_name: str, resume_epoch: int | None, epochs: int):
        super().__init__(stage_name, resume_epoch, epochs)
        self.stage_name = stage_name
        self.resume_epoch = resume_epoch
        self.epochs = epochs


def resume_epoch(last_path: Path) -> int | None:
    """The epoch (1-based) a rerun resumes from: the one after ``last_path``'s (None: no checkpoint there)."""
    if not last_path.exists():
        return None
    try:
        # mmap: the epoch number without reading the weights (a Ctrl-C should end at once).
        return int(torch.load(last_path, map_location="cpu", weights_only=True, mmap=True)["epoch"]) + 2
    except Exception:  # noqa: BLE001 — an unreadable checkpoint: the message then names no epoch
        return None


@dataclass
class EpochResult:
    loss: float
    acc: float


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> EpochResult:
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    criterion = nn.CrossEntropyLoss(reduction="sum")
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            loss_sum += criterion(logits, labels).item()
            correct += (logits.argmax(1) == labels).sum().item()
            total += labels.numel()
    return EpochResult(loss_sum / max(total, 1), 100.0 * correct / max(total, 1))


def threshold_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trained activation thresholds (QCFS λ, CS-QCFS p_c): the parameters of Activation modules."""
    return [p for m in model.modules() if isinstance(m, Activation) for p in m.parameters(recurse=False)
            if p.requires_grad]


def make_optimizer(model: nn.Module, train: Mapping, lr: float) -> torch.optim.Optimizer:
    # Thresholds (λ, p_c) are trained with weight decay like the weights (Yang et al. 2025, §5.1 and Alg. 1:
    # one SGD with one weight decay; no exemption for λ is stated), at
    # train.threshold_lr_scale × the weights' learning rate (its own group, so the schedule scales both).
    thresholds = threshold_parameters(model)
    ids = {id(p) for p in thresholds}
    weights = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    scale = float(train.get("threshold_lr_scale", 1.0))
    groups = [{"params": weights}]
    if thresholds:
        groups.append({"params": thresholds, "lr": lr * scale})
    if train["optimizer"] == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=train["weight_decay"])
    return torch.optim.SGD(groups, lr=lr, momentum=train["momentum"], weight_decay=train["weight_decay"])


def make_scheduler(optimizer: torch.optim.Optimizer, train: Mapping, epochs: int):
    if train["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if train["schedule"] == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(train["milestones"]), gamma=train["gamma"])
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def diverged(what: str, epoch: int, batch_index: int, batches: int, lr: float, last_path: Path,
             config: Mapping, stage_name: str = "train") -> SnnxError:
    """The NaN guard's error: where it happened, what was kept, what to change."""
    if epoch > 0 and last_path.exists():
        kept = f"the checkpoint of the last good epoch ({epoch}) is kept in {last_path}"
    else:
        kept = "no epoch had completed, so there is no checkpoint to keep"
    act = config.get("act") if isinstance(config.get("act"), Mapping) else {}
    acts = registries()["act"]
    trained = act.get("name") in acts and acts.get(act["name"]).trait("trains_threshold")
    extra = ", raise act.init_threshold" if trained else ""
    return SnnxError(
        f"training diverged: {what} at {'' if stage_name == 'train' else stage_name + ' '}epoch {epoch + 1}, "
        f"batch {batch_index + 1} of {batches} (lr {lr:g}); "
        f"training stopped and {kept}.",
        key="train.lr", fix=f"Lower train.lr (SGD usually trains these models at 0.01–0.1, Adam near 0.001){extra}, "
        "or check the data normalisation.")


def train_epochs(
    model: nn.Module,
    *,
    train_loader: DataLoader,
    test_loader: DataLoader,
    loader_generator: torch.Generator,
    train: Mapping,
    lr: float,
    epochs: int,
    out_dir: Path,
    config: Mapping,
    device: torch.device,
    log: Callable[[str], None],
    stage_name: str = "train",
    before_epoch: Callable[[nn.Module, int], None] | None = None,
    ctx: Context | None = None,
) -> dict:
    """Train ``model`` for ``epochs`` epochs, resuming from ``out_dir/<stage_name>_last.pt``.

    Returns the final metrics. Writes ``train.csv`` and ``last.pt`` after every
    epoch; the caller writes the finished checkpoint. With a distributed ``ctx``
    the loader must be :func:`snnx.distributed.train_loader`'s; every rank
    returns the same metrics, and only rank 0 writes. A bar tracks each epoch's
    batches unless ``config["progress"]`` is false (:mod:`snnx.progress`). Ctrl-C
    raises :class:`TrainingInterrupted`, which says the epoch a rerun resumes from.
    """
    try:
        return _train_epochs(model, train_loader=train_loader, test_loader=test_loader,
                             loader_generator=loader_generator, train=train, lr=lr, epochs=epochs, out_dir=out_dir,
                             config=config, device=device, log=log, stage_name=stage_name,
                             before_epoch=before_epoch, ctx=ctx)
    except KeyboardInterrupt as exc:
        if isinstance(exc, (TrainingInterrupted, Preempted)):
            raise
        # What the file holds, not what this call last wrote: a Ctrl-C inside the atomic save is then right too.
        raise TrainingInterrupted(stage_name, resume_epoch(out_dir / f"{stage_name}_last.pt"), epochs) from None


def _train_epochs(model: nn.Module, *, train_loader: DataLoader, test_loader: DataLoader,
                  loader_generator: torch.Generator, train: Mapping, lr: float, epochs: int, out_dir: Path,
                  config: Mapping, device: torch.device, log: Callable[[str], None], stage_name: str,
                  before_epoch: Callable[[nn.Module, int], None] | None, ctx: Context | None) -> dict:
    ctx = ctx or Context()
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    last_path = out_dir / f"{stage_name}_last.pt"
    csv_path = out_dir / f"{stage_name}.csv"
    model.to(device)
    optimizer = make_optimizer(model, train, lr)
    scheduler = make_scheduler(optimizer, train, epochs)
    criterion = nn.CrossEntropyLoss(label_smoothing=train["label_smoothing"])
    summed = nn.CrossEntropyLoss(label_smoothing=train["label_smoothing"], reduction="sum")
    rows: list[dict] = []
    start_epoch = 0
    partial = None  # the interrupted epoch's progress when last.pt was saved on a stop signal
    if last_path.exists():
        state = load_checkpoint(last_path, key=str(last_path))
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        # A distributed run saves every rank's RNG; a run of another size takes rank 0's (and decorrelates below).
        per_rank = state.get("rng_ranks")
        restore_rng(per_rank[ctx.rank] if per_rank is not None and len(per_rank) == ctx.world_size else state["rng"])
        loader_generator.set_state(state["loader_generator"])
        rows = list(state["rows"])
        start_epoch = int(state["epoch"]) + 1
        if state.get("partial_epoch") is not None:
            partial = {**state["partial_epoch"], "rng": state["rng"], "rng_ranks": per_rank}
            log(f"{stage_name}: resuming epoch {start_epoch + 1} of {epochs} after batch {partial['batches']} "
                f"of {len(train_loader)} from {last_path}")
        else:
            log(f"{stage_name}: resuming after epoch {start_epoch} of {epochs} from {last_path}")
        if per_rank is None or len(per_rank) != ctx.world_size:
            decorrelate_rng(ctx)
    elif ctx.enabled:
        decorrelate_rng(ctx)
    net = model
    if ctx.enabled:
        net = wrap(model, device, ctx, find_unused=before_epoch is not None)
    if train.get("compile", False):
        # Training steps only: evaluation, the NaN check and the checkpoints use `model` itself,
        # so state_dict keys carry no `_orig_mod.` prefix. The first batches include compile time.
        net = torch.compile(net)
        log(f"{stage_name}: train.compile=true, training forward and backward through torch.compile")

    with StopSignals() as signals:
        for epoch in range(start_epoch, epochs):
            resumed, partial = partial, None
            _train_one_epoch(model, net, epoch=epoch, epochs=epochs, resumed=resumed, train_loader=train_loader,
                             test_loader=test_loader, loader_generator=loader_generator, optimizer=optimizer,
                             scheduler=scheduler, criterion=criterion, summed=summed, rows=rows,
                             last_path=last_path, csv_path=csv_path, config=config, device=device, log=log,
                             stage_name=stage_name, before_epoch=before_epoch, ctx=ctx, signals=signals)
    if not rows:
        raise SnnxError("no epoch was trained.", key="train.epochs", fix="Set train.epochs ≥ 1.")
    final = rows[-1]
    return {"test_acc": final["test_acc"], "test_loss": final["test_loss"], "train_acc": final["train_acc"],
            "epochs": len(rows), "rows": rows}


def _save_resume_point(path: Path, *, config: Mapping, model: nn.Module, optimizer, scheduler, epoch: int,
                       rows: list, rng, ctx: Context, loader_state: torch.Tensor, metrics: dict | None = None,
                       partial: dict | None = None) -> None:
    """``<stage>_last.pt``: what the next epoch (or, with ``partial``, the rest of epoch ``epoch + 1``) needs.

    ``epoch``: the last completed epoch (0-based, -1 for none). ``loader_state``: the data-order generator at
    the start of the epoch to run next — after ``epoch`` for a completed one, at the start of the
    interrupted one with ``partial`` (whose permutation the resumed run draws again)."""
    extra = {"rng": rng} if not ctx.enabled else {"rng": rng[0], "rng_ranks": rng}
    state = {"config": dict(config), "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "epoch": epoch, "rows": rows, **extra,
             "loader_generator": loader_state}
    if metrics is not None:
        state["metrics"] = metrics
    if partial is not None:
        state["partial_epoch"] = partial
    atomic_save(state, path)


def _skip_batches(train_loader: DataLoader, skip: int) -> int:
    """Set the loader's next iteration to pass over its first ``skip`` batches without loading them; returns
    the batches to load and throw away instead (DataLoader workers: see snnx.data.order)."""
    sampler = train_loader.batch_sampler
    if train_loader.num_workers == 0 and hasattr(sampler, "skip"):
        sampler.skip = skip
        return 0
    return skip


def _train_one_epoch(model: nn.Module, net: nn.Module, *, epoch: int, epochs: int, resumed: dict | None,
                     train_loader: DataLoader, test_loader: DataLoader, loader_generator: torch.Generator,
                     optimizer, scheduler, criterion, summed, rows: list, last_path: Path, csv_path: Path,
                     config: Mapping, device: torch.device, log: Callable[[str], None], stage_name: str,
                     before_epoch, ctx: Context, signals: StopSignals) -> None:
    """One epoch, from its first batch or (``resumed``: a stop signal's partial-epoch record) from where the
    interrupted run stopped, with the same weights at its end either way.

    After every optimiser step the stop signals are checked (across ranks); on one, the resume point is
    saved with the epoch's progress and :meth:`StopSignals.stop` ends the run (or hands it to submitit)."""
    if before_epoch is not None:
        before_epoch(model, epoch)
    model.train()
    began = time.perf_counter()
    seen, correct, loss_sum = 0, 0, 0.0
    current_lr = optimizer.param_groups[0]["lr"]
    batches = len(train_loader)
    start = 0
    # The generator as this epoch's iterator is about to draw from it: a stop mid-epoch saves this state.
    epoch_order = loader_generator.get_state()
    discard = 0
    if resumed is not None:
        start = int(resumed["batches"])
        if ctx.is_main:  # the saved sums are the ranks' totals (see _stop_mid_epoch)
            seen, correct, loss_sum = resumed["seen"], resumed["correct"], resumed["loss_sum"]
        began -= float(resumed["seconds"])
        discard = _skip_batches(train_loader, start)
    batch_iter = iter(train_loader)
    for _ in range(discard):
        next(batch_iter)
    if resumed is not None:
        # The RNG as it was after the interrupted run's last step: dropout masks and main-process
        # augmentation go on from there.
        per_rank = resumed.get("rng_ranks")
        same_size = per_rank is not None and len(per_rank) == ctx.world_size
        restore_rng(per_rank[ctx.rank] if same_size else resumed["rng"])
        if not same_size:
            decorrelate_rng(ctx)
    # The bar's iterator stays off the frame's locals: an error in the loop then closes it at once.
    for batch_index, (images, labels) in enumerate(track(
            batch_iter, total=batches, completed=start, description=f"{stage_name} epoch {epoch + 1}/{epochs}",
            enabled=config.get("progress", True)), start=start):
        images, labels = images.to(device), labels.to(device)
        logits = net(images)
        if ctx.enabled:
            # Summed loss × world_size / global batch: DDP's gradient average is then the global batch mean.
            batch_loss = summed(logits, labels)
            loss = batch_loss * train_loader.batch_sampler.loss_weight(batch_index)
            finite = ctx.all_finite(batch_loss)
        else:
            loss = criterion(logits, labels)
            finite = bool(torch.isfinite(loss))
        if not finite:
            value = loss.item() if not torch.isfinite(loss) else float("nan")
            raise diverged(f"the training loss became {value}", epoch, batch_index, batches, current_lr,
                           last_path, config, stage_name)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ctx.enabled:
            real = train_loader.batch_sampler.real_items(batch_index)
            if real:
                loss_sum += batch_loss.item()
                correct += (logits.argmax(1) == labels).sum().item()
                seen += real
        else:
            loss_sum += loss.item() * labels.numel()
            correct += (logits.argmax(1) == labels).sum().item()
            seen += labels.numel()
        if ctx.any(signals.received is not None):
            _stop_mid_epoch(model, epoch=epoch, epochs=epochs, done=batch_index + 1, batches=batches,
                            seen=seen, correct=correct, loss_sum=loss_sum, seconds=time.perf_counter() - began,
                            optimizer=optimizer, scheduler=scheduler, rows=rows, last_path=last_path,
                            config=config, ctx=ctx, epoch_order=epoch_order, stage_name=stage_name,
                            signals=signals)
    if ctx.enabled:
        loss_sum, correct, seen = ctx.total([loss_sum, float(correct), float(seen)])
    # The last step can break the weights (or BN statistics) without a loss to show it: never save such an epoch.
    if not all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point()):
        raise diverged("the weights became NaN/inf by the end of the epoch", epoch, batches - 1, batches,
                       current_lr, last_path, config, stage_name)
    with warnings.catch_warnings():
        # A resumed epoch whose batches were all done before the stop takes no optimiser step here, which
        # torch's "scheduler.step() before optimizer.step()" check would take for a mistake.
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
        scheduler.step()
    # Evaluation draws from the global RNG (the test loader's base seed): capture the RNG after it.
    test = evaluate(model, test_loader, device) if ctx.is_main else None
    rng = capture_rng() if not ctx.enabled else ctx.gather(capture_rng())
    row = None
    if ctx.is_main:
        row = {"stage": stage_name, "epoch": epoch + 1, "lr": current_lr, "train_loss": loss_sum / seen,
               "train_acc": 100.0 * correct / seen, "test_loss": test.loss, "test_acc": test.acc,
               "seconds": round(time.perf_counter() - began, 3)}
        rows.append(row)
        log(f"{stage_name} epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.4f} "
            f"train {row['train_acc']:.2f}% test {test.acc:.2f}% ({row['seconds']:.1f}s)")
        # CSV first, then the resume point: a kill in between leaves a CSV one row ahead, which the
        # resumed run rewrites from the checkpoint's rows (each epoch appears once).
        write_csv(pd.DataFrame(rows), csv_path)
        _save_resume_point(last_path, config=config, model=model, optimizer=optimizer, scheduler=scheduler,
                           epoch=epoch, rows=rows, rng=rng, ctx=ctx, loader_state=loader_generator.get_state(),
                           metrics={"test_acc": test.acc})
    if ctx.enabled:
        # Rank 0's row once its checkpoint is written: also keeps the ranks in step.
        row = ctx.broadcast(row)
        if not ctx.is_main:
            rows.append(row)
    # A signal during evaluation or the save: the epoch is saved whole, the next starts on the rerun.
    if ctx.any(signals.received is not None):
        signals.stop(saved=f"{_stage_epoch(stage_name)} {epoch + 1}'s checkpoint",
                     resume=f"{_stage_epoch(stage_name)} {epoch + 2}" if epoch + 1 < epochs else "its end")


def _stage_epoch(stage_name: str) -> str:
    return "epoch" if stage_name == "train" else f"{stage_name} epoch"


def _stop_mid_epoch(model: nn.Module, *, epoch: int, epochs: int, done: int, batches: int, seen, correct, loss_sum,
                    seconds: float, optimizer, scheduler, rows: list, last_path: Path, config: Mapping,
                    ctx: Context, epoch_order: torch.Tensor, stage_name: str, signals: StopSignals) -> None:
    """Save epoch ``epoch``'s progress after ``done`` batches as the resume point, then stop."""
    rng = capture_rng() if not ctx.enabled else ctx.gather(capture_rng())
    if ctx.enabled:
        # The ranks' partial sums, totalled: the resumed run's rank 0 carries them, the others start at 0.
        loss_sum, correct, seen = ctx.total([loss_sum, float(correct), float(seen)])
    partial = {"batches": done, "seen": seen, "correct": correct, "loss_sum": loss_sum, "seconds": seconds}
    if ctx.is_main:
        _save_resume_point(last_path, config=config, model=model, optimizer=optimizer, scheduler=scheduler,
                           epoch=epoch - 1, rows=rows, rng=rng, ctx=ctx, loader_state=epoch_order,
                           partial=partial)
    ctx.barrier()
    where = f"{_stage_epoch(stage_name)} {epoch + 1}, batch {done + 1} of {batches}" if done < batches \
        else f"the end of {_stage_epoch(stage_name)} {epoch + 1}"
    signals.stop(saved=f"{_stage_epoch(stage_name)} {epoch + 1} after batch {done} of {batches}", resume=where)
