"""A multirun's job records: one file per job in a folder under the runs' root, so jobs a cluster launcher
starts on other nodes (their own /tmp, their own processes) are in the launching process's summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from snnx import sweep_jobs

JOB = {"num": 3, "task": ["act.L=8"], "shown": ["act.L=8"], "sweep_dir": "/s"}


def test_records_folder_lies_under_the_root_and_goes_at_the_end(tmp_path):
    records = sweep_jobs.make_records_dir(str(tmp_path / "root"))
    assert os.path.dirname(records) == str(tmp_path / "root" / sweep_jobs.RECORDS_DIR)
    sweep_jobs.remove_records_dir(records)
    assert not (tmp_path / "root" / sweep_jobs.RECORDS_DIR).exists()


def test_a_job_in_another_process_with_its_own_temp_folder_is_read(tmp_path, monkeypatch):
    records = sweep_jobs.make_records_dir(str(tmp_path / "root"))
    private_tmp = tmp_path / "node-b-tmp"
    private_tmp.mkdir()
    code = ("import sys, json; from snnx import sweep_jobs; "
            "sweep_jobs.record_result(json.loads(sys.argv[1]), '/r', {'ann_acc': 97.5})")
    for num in (0, 1):
        env = {**os.environ, sweep_jobs.JOBS_ENV: records, "TMPDIR": str(private_tmp)}
        done = subprocess.run([sys.executable, "-c", code, json.dumps({**JOB, "num": num})], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    monkeypatch.setenv(sweep_jobs.JOBS_ENV, records)
    sweep_jobs.record_failure(JOB, ValueError("bad"), user_error=True)
    (tmp_path / "root" / sweep_jobs.RECORDS_DIR / os.path.basename(records) / ".9-half.json").write_text("{")
    jobs = sorted(sweep_jobs.read_jobs(records), key=lambda j: j["num"])
    assert [(j["num"], j["status"]) for j in jobs] == [(0, "ok"), (1, "ok"), (3, "failed")]
    assert jobs[0]["ann_acc"] == 97.5 and jobs[2]["message"] == "bad"
    assert sweep_jobs.report_failures(records, ["act.L"]) == 2  # a user error: exit status 2


def test_an_unwritable_root_falls_back_to_the_temp_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    records = sweep_jobs.make_records_dir(str(blocker))  # a file where the root should be
    assert os.path.isdir(records) and not records.startswith(str(blocker))
    sweep_jobs.remove_records_dir(records)
