"""examples/byo_model.py as a user runs it: four methods on one's own CNN, the round trip, the MaxPool error."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # long end to end (make test-full)
def test_byo_model_example_converts_with_four_methods(tmp_path):
    saved = tmp_path / "snn.pt"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "byo_model.py"), "--epochs", "8", "--T", "8", "64",
                           "--save", str(saved)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for method in ("maxnorm", "pnorm", "msat", "shift"):
        assert f"\n{method} (ANN " in out
    assert "loaded back: same accuracy at every T: True" in out and saved.is_file()
    assert "with max pooling: snnx.api.convert(maxpool=…): " in out and "'max_pool2d'" in out
    # Every table has a row per T; at T=64 every method is within 3 points of the ANN.
    blocks = [b.strip() for b in out.split("\n\n") if b.strip()]
    tables = [b for b in blocks if "(ANN " in b.splitlines()[0]]
    assert len(tables) == 4
    for table in tables:
        ann = float(table.splitlines()[0].split("(ANN ")[1].split(" %")[0])
        rows = {int(line.split()[0]): float(line.split()[1]) for line in table.splitlines()[2:]
                if line.split()[0].isdigit()}
        assert sorted(rows) == [8, 64]
        assert ann > 80 and abs(rows[64] - ann) < 3.0, table


@pytest.mark.slow
def test_torchvision_resnet18_converges_to_the_converted_ann():
    """examples/torchvision_resnet.py: random-weight ResNet-18, 64×64, 8 images; the relative error of the
    SNN's mean output against the (average-pooling) ANN's logits falls from T=32 to 128 to 512."""
    spec = importlib.util.spec_from_file_location("torchvision_resnet", ROOT / "examples" / "torchvision_resnet.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    errors = example.main([])
    assert errors[32] > errors[128] > errors[512] and errors[512] < 0.1, errors
