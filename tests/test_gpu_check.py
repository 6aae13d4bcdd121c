"""scripts/gpu_check.py (`make gpu-check`): its generated CIFAR-10 is what snnx's cifar10 loader reads and a
classifier can learn; its comparison helper; the whole check end to end on the CPU at tiny sizes (slow)."""

from __future__ import annotations

import importlib.util
import math
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import snnx.api as api
from snnx.activations.registry import ACTIVATIONS
from snnx.convert.methods import METHODS
from snnx.data.info import dataset_info
from snnx.sim.engine import auto_chunk

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def _rows(folder: Path, name: str) -> tuple[np.ndarray, list[int]]:
    with open(folder / name, "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    return batch["data"], batch["labels"]


def test_generated_cifar10_reads_back_and_is_learnable(gpu_check, tmp_path):
    folder = gpu_check.write_cifar10(tmp_path, 103, 37, seed=3)
    config = api.compose("dataset=cifar10", f"dataset.root={tmp_path}", stage="train")
    train, test = api.build_dataset(config, "train"), api.build_dataset(config, "test")
    assert (len(train), len(test)) == (103, 37)
    parts = [_rows(folder, f"data_batch_{b}") for b in range(1, 6)]
    assert [len(labels) for _, labels in parts] == [21, 21, 21, 20, 20]
    train_x = np.vstack([x for x, _ in parts]).astype(np.float64)
    train_y = np.array([y for _, labels in parts for y in labels])
    test_x, test_y = _rows(folder, "test_batch")
    # The loader's test images are the pickled rows, normalised with CIFAR-10's mean and std.
    info = dataset_info("cifar10")
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (info.mean, info.std))
    for i in (0, 36):
        image, label = test[i]
        raw = torch.from_numpy(test_x[i].reshape(3, 32, 32).astype(np.float32)) / 255
        assert label == test_y[i] and torch.allclose(image, (raw - mean) / std, atol=1e-5)
    # Learnable: the nearest class-mean colour (3 numbers per image) from these 103 images classifies the test
    # images far above the 10 % of chance.
    colour = lambda x: x.reshape(len(x), 3, -1).mean(2)  # noqa: E731
    centres = np.stack([colour(train_x[train_y == c]).mean(0) for c in range(10)])
    guess = np.linalg.norm(colour(test_x.astype(np.float64))[:, None] - centres[None], axis=2).argmin(1)
    assert (guess == np.array(test_y)).mean() > 0.5
    # Rewritten only when the sizes or the seed change.
    stamp = (folder / "test_batch").stat().st_mtime_ns
    gpu_check.write_cifar10(tmp_path, 103, 37, seed=3)
    assert (folder / "test_batch").stat().st_mtime_ns == stamp
    gpu_check.write_cifar10(tmp_path, 103, 12, seed=3)
    assert len(_rows(folder, "test_batch")[1]) == 12


def test_compare_counts_agreement_delta_and_margins(gpu_check):
    reference = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.9], [1.0, 0.0, 5.0], [0.5, 0.4, 0.0]], dtype=torch.float64)
    device_out = reference.float().clone()
    device_out[1, 2] += 0.2  # image 1 now predicts class 2: disagrees, margin 0.1
    device_out[0, 0] -= 1e-3  # image 0 still agrees
    cell = gpu_check.compare(device_out, reference)
    assert cell.agree == pytest.approx(75.0)
    assert cell.disagreeing == [1] and cell.margins == pytest.approx([0.1])
    assert cell.max_delta == pytest.approx(float((device_out.double() - reference).abs().max()))
    assert cell.noise == pytest.approx(1e-3, rel=1e-3)
    assert not cell.explained and not cell.ok and cell.images == 4
    assert gpu_check.compare(reference.float(), reference).ok


def test_each_method_runs_with_an_activation_its_entry_accepts(gpu_check):
    for entry in METHODS:
        act, accepted = gpu_check.method_act(entry.name)
        assert act in accepted and entry.trait("accepts")(ACTIVATIONS.get(act), entry.defaults())
    assert gpu_check.sweep(64) == [1, 2, 4, 8, 16, 32, 64] and gpu_check.sweep(12) == [1, 2, 4, 8, 12]


CELL = re.compile(r"\|\s*([\d.]+)([ *!])\s*([\d.e+-]+|nan|inf)\s*")


@pytest.mark.slow
def test_the_whole_check_on_cpu(gpu_check, tmp_path, capsys):
    code = gpu_check.main(["--device", "cpu", "--quick", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("model ") and "| T=" in line)
    time_steps = [int(t) for t in re.findall(r"T=(\d+)", lines[head])]
    assert time_steps == gpu_check.sweep(gpu_check.SIZES["max_T"][2])
    rows = []
    for line in lines[head + 2:]:
        if not line.strip() or line.startswith("below"):
            break
        rows.append(line)
    assert len(rows) == len(gpu_check.NETS) * len(METHODS.names())
    seen = {}
    unexplained = 0
    for line in rows:
        model, method = line.split()[:2]
        seen.setdefault(method, []).append(model)
        if "not applicable" in line:
            assert line.split("| ", 1)[1].strip()  # the converter's reason is shown
            continue
        cells = CELL.findall(line)
        assert len(cells) == len(time_steps), line
        for agree, mark, delta in cells:
            assert 0.0 <= float(agree) <= 100.0 and math.isfinite(float(delta)) and float(delta) >= 0.0
            assert (mark == " ") == (float(agree) >= gpu_check.AGREEMENT)
            unexplained += mark == "!"
    assert set(seen) == set(METHODS.names()) and all(len(m) == len(gpu_check.NETS) for m in seen.values())
    assert code == (1 if unexplained else 0)
    assert ("agreement: PASS" in out) == (code == 0)
    # Every throughput line, once per net, with a positive figure.
    for key in ("sim_images_per_s_T32", "ann32_images_per_s", "dense_ratio", "train_images_per_s_relu",
                "train_images_per_s_csqcfs", "train_ratio"):
        values = [float(v) for v in re.findall(rf"^\s*{key}=([\d.e+-]+)", out, re.M)]
        assert len(values) == len(gpu_check.NETS) and all(v > 0 for v in values), key
    chunks = re.findall(r"chunk_auto=(\d+) chunk_best=(\d+) \(images/s each: (.*?);", out)
    assert len(chunks) == len(gpu_check.NETS)
    for auto, best, each in chunks:
        per_chunk = {int(c): float(v) for c, v in re.findall(r"(\d+)=([\d.]+)", each)}
        assert set(per_chunk) == set(gpu_check.CHUNKS) and max(per_chunk, key=per_chunk.get) == int(best)
        assert int(auto) == auto_chunk(torch.device("cpu"))
