"""`snnx table` over a partial sweep: every results.csv it cannot use is named with the reason, the jobs
without one yet are counted, and table.strict=true makes either an error (exit 2, no table written).

A Hydra multirun layout (<sweep>/<job num>/.hydra, results.csv when finished) of synthetic runs; no training.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from snnx.errors import DataError, SnnxError
from snnx.tables import load_table, pending_jobs
from snnx.tables.results import read_result_file

from conftest import snnx
from test_tables import layout, write_run

REPO = Path(__file__).resolve().parents[1]


def partial_sweep(root: Path) -> dict:
    """Jobs 0, 1, 3: good; 2: results.csv cut off mid-row; 4: garbage where acc belongs; 5: .hydra, no results."""
    parent = root / "multirun" / "2026-01-01"
    jobs = {n: write_run(parent, str(n), accs={1: 10.0 + n, 4: 90.0 + n}, ann=95.0, L=n + 2) for n in range(5)}
    truncated = jobs[2] / "results.csv"
    text = truncated.read_text()
    truncated.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 40])  # the last row cut after 40 characters
    garbage = jobs[4] / "results.csv"
    frame = pd.read_csv(garbage).astype({"acc": object})
    frame.loc[1, "acc"] = "garbage"
    frame.to_csv(garbage, index=False)
    running = parent / "runs" / "5"
    (running / ".hydra").mkdir(parents=True)
    (running / ".hydra" / "config.yaml").write_text("stage: run\n")
    return {"sweep": parent / "runs", "truncated": truncated, "garbage": garbage}


def test_notes_name_each_skipped_file_with_its_reason_and_the_jobs_without_results(tmp_path):
    sweep = partial_sweep(tmp_path)
    result = load_table(layout(), tmp_path)
    assert sorted(result.frame["T=4"]) == ["90.00", "91.00", "93.00"]  # the good jobs 0, 1, 3
    notes = result.notes
    assert f"skipped {sweep['truncated']}: line 3 has 7 of the header's 24 fields (truncated: half-written?)" in notes
    assert f"skipped {sweep['garbage']}: acc on line 3 is 'garbage', not a number" in notes
    assert f"sweep {sweep['sweep']}: 1 of 6 jobs has no results.csv yet: 5" in notes
    assert notes.index(f"sweep {sweep['sweep']}: 1 of 6 jobs has no results.csv yet: 5") < 3  # before the others


@pytest.mark.parametrize("text, reason", [
    ("", "empty file (no header, no rows)"),
    ("run_id,T,acc\n", "a header and no rows (half-written?)"),
    ("run_id,T,acc\na,1,50.0\nb,2\n", "line 3 has 2 of the header's 3 fields (truncated: half-written?)"),
    ("run_id,T,acc\na,1,50.0,7\n", "line 2 has 4 of the header's 3 fields"),
    ("run_id,T\na,1\n", "no acc column (not a snnx results.csv?)"),
    ("run_id,acc\na,1\n", "no T column (not a snnx results.csv?)"),
    ("run_id,T,acc\na,1,\n", "acc on line 2 is an empty value"),
    ("run_id,T,acc,sops\na,1,5,x\nb,2,6,y\n", "sops on line 2 is 'x', not a number (2 such rows)"),
    (b"T,acc\n1,\xff\n", "cannot be read"),
])
def test_each_kind_of_unusable_file_has_its_reason(tmp_path, text, reason):
    path = tmp_path / "results.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    frame, why = read_result_file(path)
    assert frame is None and why.startswith(reason), why


def test_a_good_file_reads_with_empty_optional_numbers(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("run_id,T,acc,ann_acc\n\na,1,50.0,\nb,2,60.0,95.0\n")
    frame, why = read_result_file(path)
    assert why is None and list(frame["acc"]) == [50.0, 60.0] and frame["ann_acc"].isna().tolist() == [True, False]


def test_pending_jobs_counts_only_sweeps_of_stages_that_write_results(tmp_path):
    sweep = tmp_path / "multirun" / "d" / "t_run"
    for n in (0, 1, 2, 5, 7, 3, 6, 4):
        (sweep / str(n) / ".hydra").mkdir(parents=True)
    for n in (0, 1, 3, 4, 6):
        (sweep / str(n) / "results.csv").write_text("T,acc\n1,50\n")
    trains = tmp_path / "multirun" / "d" / "t_train"
    for n in (0, 1):  # a train sweep never writes results.csv
        (trains / str(n) / ".hydra").mkdir(parents=True)
        (trains / str(n) / ".hydra" / "config.yaml").write_text("stage: train\n")
    (tmp_path / "runs" / "d" / "t_table" / ".hydra").mkdir(parents=True)  # a single run, not a sweep's job
    (pending,) = pending_jobs(tmp_path)
    assert pending.note == f"sweep {sweep}: 3 of 8 jobs have no results.csv yet: 2, 5, 7"


def test_strict_in_process_is_a_data_error_naming_files_and_key(tmp_path):
    sweep = partial_sweep(tmp_path)
    with pytest.raises(DataError) as info:
        load_table(layout(strict=True), tmp_path)
    err = info.value
    assert err.key == "table.strict" and err.exit_code == 2
    for phrase in (str(sweep["truncated"]), str(sweep["garbage"]), "1 of 6 jobs has no results.csv yet: 5",
                   "no table is written"):
        assert phrase in str(err), phrase


def test_an_empty_table_says_which_files_were_skipped(tmp_path):
    sweep = partial_sweep(tmp_path)
    with pytest.raises(SnnxError) as info:
        load_table(layout(filters={"L": 4}), tmp_path)  # L=4 is job 2's: the truncated one
    assert "the table is empty" in str(info.value) and str(sweep["truncated"]) in str(info.value)


def test_cli_strict_exits_2_and_writes_no_table_while_the_default_writes_the_good_runs(tmp_path):
    sweep = partial_sweep(tmp_path)
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "summary.csv").write_text("an earlier table\n")  # left as it is by a strict run that fails
    strict = snnx("table", "table.strict=true", f"paths.root={tmp_path}", cwd=REPO, timeout=120)
    assert strict.returncode == 2, strict.stderr
    err = strict.stderr.strip()
    assert err.startswith("snnx: error: table.strict:") and len(err.splitlines()) == 1 and "Traceback" not in err
    for phrase in (f"{sweep['truncated']}: line 3 has 7 of the header's 24 fields", f"{sweep['garbage']}: acc on line 3",
                   f"Sweep {sweep['sweep']}: 1 of 6 jobs has no results.csv yet: 5", "table.strict=true"):
        assert phrase in err, phrase
    assert [p.name for p in tables.iterdir()] == ["summary.csv"]
    assert (tables / "summary.csv").read_text() == "an earlier table\n"

    done = snnx("table", f"paths.root={tmp_path}", cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(pd.read_csv(tables / "summary.csv")["T=4"]) == [90.0, 91.0, 93.0]
    assert (tables / "summary.png").is_file()
    for phrase in (f"note: skipped {sweep['truncated']}: line 3", f"note: skipped {sweep['garbage']}: acc on line 3",
                   f"note: sweep {sweep['sweep']}: 1 of 6 jobs has no results.csv yet: 5"):
        assert phrase in done.stdout, phrase
