"""A full disk (an injected ENOSPC) ends a run with one paragraph naming the path; nothing half-written is left,
and the file that was there is unchanged (issue 19)."""

from __future__ import annotations

import errno
import os

import pandas as pd
import pytest

from snnx import artifacts, cli
from snnx.artifacts import atomic_save, write_csv
from snnx.errors import DiskError

from conftest import TINY


def _full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_keeps_the_old_file_and_names_the_path(tmp_path, monkeypatch):
    table = tmp_path / "results.csv"
    write_csv(pd.DataFrame({"acc": [1.0]}), table)
    monkeypatch.setattr(artifacts.os, "fsync", _full)
    with pytest.raises(DiskError, match=r"paths\.root: could not write '.*results\.csv': No space left on device"):
        write_csv(pd.DataFrame({"acc": [2.0]}), table)
    with pytest.raises(DiskError, match=r"model\.pt"):
        atomic_save({"a": 1}, tmp_path / "model.pt")
    assert pd.read_csv(table)["acc"].tolist() == [1.0]
    assert sorted(os.listdir(tmp_path)) == ["results.csv"]  # no temp file, no model.pt, no sidecar


def test_the_cli_ends_a_run_on_a_full_disk_in_one_paragraph(tmp_path, monkeypatch, capsys):
    root = tmp_path / "root"
    monkeypatch.setattr(artifacts.os, "fsync", _full)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        cli.main(["train", *TINY, "act=relu", f"paths.root={root}"])
    err = capsys.readouterr().err.strip()
    assert ended.value.code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("snnx: error: paths.root: could not write ") and "No space left on device" in err
    leftovers = [p for p in root.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert not leftovers and not list(root.rglob("model.pt"))
