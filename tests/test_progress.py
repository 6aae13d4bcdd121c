"""Progress bars (snnx.progress): the items pass through unchanged, nothing is drawn when off, and on a
terminal the bar shows its description and count; the trainer and calibration draw theirs."""

from __future__ import annotations

import io

import pytest
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from snnx import console as snnx_console
from snnx import progress
from snnx.calibration import calibrate
from snnx.trainer import train_epochs


@pytest.fixture(autouse=True)
def not_ci(monkeypatch):
    """Bars are quiet under CI: these tests say where they are drawn, so the variable must not decide."""
    monkeypatch.delenv("CI", raising=False)


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=120), buffer


def _loader(shuffle: bool) -> DataLoader:
    data = TensorDataset(torch.arange(40.0).view(20, 2), torch.arange(20) % 3)
    return DataLoader(data, batch_size=3, shuffle=shuffle, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("enabled", [True, False])
def test_the_tracked_iterable_yields_the_same_items_in_the_same_order(enabled):
    console, _ = _terminal()
    assert list(progress.track(range(7), enabled=enabled, console=console)) == list(range(7))
    # a generator has no len(): the bar counts without a total
    assert list(progress.track((i * i for i in range(5)), enabled=enabled, console=console)) == [0, 1, 4, 9, 16]
    # a shuffled loader draws its order from its generator when iterated: the same batches with the bar
    plain, tracked = _loader(True), _loader(True)
    for (x, y), (tx, ty) in zip(plain, progress.track(tracked, enabled=enabled, console=console), strict=True):
        assert torch.equal(x, tx) and torch.equal(y, ty)


def test_a_terminal_shows_the_description_and_the_count():
    console, buffer = _terminal()
    assert progress.shown(True, console)
    list(progress.track(range(4), description="simulate", console=console))
    text = buffer.getvalue()
    assert "simulate" in text and "4/4" in text and "batch/s" in text


def test_nothing_is_drawn_when_off_under_ci_or_off_a_terminal(monkeypatch):
    console, buffer = _terminal()
    list(progress.track(range(4), description="simulate", enabled=False, console=console))
    assert buffer.getvalue() == ""
    not_a_terminal = Console(file=io.StringIO(), width=120)
    assert not progress.shown(True, not_a_terminal)
    list(progress.track(range(4), console=not_a_terminal))
    assert not_a_terminal.file.getvalue() == ""
    monkeypatch.setenv("CI", "true")
    list(progress.track(range(4), console=console))
    assert buffer.getvalue() == ""
    monkeypatch.setenv("CI", "false")
    assert progress.shown(True, console)
    monkeypatch.delenv("CI")
    monkeypatch.setattr(snnx_console, "_HELPER", True)  # a torchrun rank other than 0
    assert not progress.shown(True, console)


def test_close_all_erases_a_bar_whose_loop_was_left():
    console, _ = _terminal()
    items = progress.track(range(10), console=console)
    assert next(items) == 0 and len(progress._OPEN) == 1
    progress.close_all()
    assert progress._OPEN == []
    items.close()  # the iterator's own exit afterwards is harmless
    assert progress._OPEN == []


def _train(tmp_path, on: bool) -> tuple[dict, str]:
    console, buffer = _terminal()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    train = {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 0.0, "schedule": "none", "label_smoothing": 0.0}
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(30, 2, generator=torch.Generator().manual_seed(1)), torch.arange(30) % 3)
    loader = DataLoader(data, batch_size=4, shuffle=True, generator=generator)
    original = snnx_console.console
    snnx_console.console = console
    try:
        train_epochs(model, train_loader=loader, test_loader=DataLoader(data, batch_size=10),
                     loader_generator=generator, train=train, lr=0.1, epochs=2, out_dir=tmp_path / str(on),
                     config={"progress": on}, device=torch.device("cpu"), log=lambda _: None)
    finally:
        snnx_console.console = original
    return model.state_dict(), buffer.getvalue()


def test_training_draws_a_bar_per_epoch_unless_progress_is_false_and_trains_the_same(tmp_path):
    weights_on, shown = _train(tmp_path, True)
    weights_off, quiet = _train(tmp_path, False)
    assert "train epoch 1/2" in shown and "train epoch 2/2" in shown and "8/8" in shown
    assert quiet == ""
    for name in weights_on:
        assert torch.equal(weights_on[name], weights_off[name]), name


def test_calibration_draws_its_bar_unless_progress_is_false(monkeypatch):
    console, buffer = _terminal()
    monkeypatch.setattr(snnx_console, "console", console)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU())
    batches = [torch.randn(5, 2, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    quiet = calibrate(model, iter(batches), percentile=99.0, num_batches=3, device=torch.device("cpu"),
                      progress=False)
    assert buffer.getvalue() == ""
    drawn = calibrate(model, iter(batches), percentile=99.0, num_batches=3, device=torch.device("cpu"))
    assert "calibrate" in buffer.getvalue() and "3/3" in buffer.getvalue()
    assert quiet.keys() == drawn.keys()
    for site in quiet:
        assert quiet[site]["max"] == drawn[site]["max"] and quiet[site]["percentile"] == drawn[site]["percentile"]
        assert torch.equal(quiet[site]["channel_max"], drawn[site]["channel_max"])
