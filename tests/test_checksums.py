"""Every tensor file snnx writes carries a sha256 sidecar, checked on load: a file that still loads but whose
bytes changed is named; a bad cache entry is moved aside and rebuilt (issue 19, corrupt artifacts)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch

from snnx.artifacts import atomic_save, checksum_path, load_checkpoint, verify_checksum
from snnx.errors import ChecksumError

from conftest import snnx


def flip_a_weight_byte(path: Path) -> None:
    """Change one byte inside the first tensor's data (the zip's other bytes untouched: torch still loads it)."""
    blob = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size > 16)
    name_len, extra_len = struct.unpack("<HH", blob[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    blob[start + info.file_size // 2] ^= 0x01
    path.write_bytes(bytes(blob))


def _checkpoint(path: Path) -> dict:
    data = {"config": {"a": 1}, "state_dict": {"w": torch.arange(256, dtype=torch.float32)}}
    atomic_save(data, path)
    return data


def test_a_flipped_byte_that_still_loads_is_named(tmp_path):
    path = tmp_path / "model.pt"
    data = _checkpoint(path)
    digest, name = checksum_path(path).read_text().split()
    assert name == "model.pt" and len(digest) == 64
    if shutil.which("sha256sum"):  # the sidecar is sha256sum's format
        assert subprocess.run(["sha256sum", "-c", checksum_path(path).name], cwd=tmp_path,
                              capture_output=True).returncode == 0
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], data["state_dict"]["w"])
    flip_a_weight_byte(path)
    assert not torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], data["state_dict"]["w"])
    with pytest.raises(ChecksumError, match=r"model\.pt' does not match its checksum \(model\.pt\.sha256") as err:
        load_checkpoint(path, key="ckpt")
    assert err.value.key == "ckpt" and err.value.exit_code == 2 and "delete it" in str(err.value)
    checksum_path(path).unlink()  # a file from before checksums (no sidecar) loads as it is
    assert not verify_checksum(path, key="ckpt")
    load_checkpoint(path)


def test_saving_again_replaces_the_sidecar(tmp_path):
    path = tmp_path / "x.pt"
    _checkpoint(path)
    first = checksum_path(path).read_text()
    atomic_save({"config": {}, "state_dict": {"w": torch.ones(3)}}, path)
    assert checksum_path(path).read_text() != first and verify_checksum(path, key="x")


def test_a_corrupt_cache_entry_is_moved_aside_and_rebuilt(trained, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(trained["root"] / "cache", root / "cache")
    model = root / trained["model"].relative_to(trained["root"])  # the fixture's ANN, in the copy
    flip_a_weight_byte(model)
    args = [a for a in trained["args"] if not a.startswith("paths.root=")] + [f"paths.root={root}"]
    done = snnx("train", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "unusable" in done.stdout and "does not match its checksum" in done.stdout
    (moved,) = [p for p in model.parent.glob("model.pt.corrupt-*") if p.suffix != ".sha256"]
    assert checksum_path(moved).exists()  # the sidecar went with it
    assert verify_checksum(model, key="cache")  # the rebuilt entry checks out
    assert "reusing" in snnx("train", *args, cwd=tmp_path).stdout  # and is reused
