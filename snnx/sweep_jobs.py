"""A multirun's jobs: the label each job carries, one record per finished or failed job in a folder the
launching process reads, and what it prints when the sweep ends (one summary table, the command that
aggregates the results, the failures).

The folder lies under the runs' root (``paths.root``), so jobs that a cluster launcher starts on other
nodes write their records where the launching process reads them; each record is its own file, written
whole and then renamed into place (appends to one shared file are not atomic across nodes on NFS).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import uuid

from hydra.core.hydra_config import HydraConfig
from rich.markup import escape
from rich.table import Table

from snnx.composition import _override_key
from snnx.console import console

# The environment variable naming the jobs' record folder (set by the launching process, read by every job).
JOBS_ENV = "SNNX_MULTIRUN_FAILURES"
# Where under the runs' root the record folders go (removed at the end of the sweep).
RECORDS_DIR = ".multirun"


def make_records_dir(root: str) -> str:
    """A fresh record folder under ``root`` (shared with a cluster's nodes); the system's temp folder if
    ``root`` cannot be written (the launcher then reports only jobs that can reach it)."""
    try:
        parent = os.path.join(os.path.abspath(root), RECORDS_DIR)
        os.makedirs(parent, exist_ok=True)
        return tempfile.mkdtemp(prefix="sweep-", dir=parent)
    except OSError:
        return tempfile.mkdtemp(prefix="snnx-multirun-")


def remove_records_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    parent = os.path.dirname(path)
    if os.path.basename(parent) == RECORDS_DIR:  # the parent too, once no other sweep uses it
        try:
            os.rmdir(parent)
        except OSError:
            pass


def job_context(swept: list[str], command_keys: set[str], total: int | None) -> dict:
    """The running multirun job: its number (Hydra's, the run directory's name), the overrides that tell it
    apart (the swept keys; those an optimising sweeper adds; none for a one-job multirun), its label and where
    it writes."""
    try:
        hc = HydraConfig.get()
        num, task = hc.job.num, list(hc.overrides.task)
        run_dir = str(hc.runtime.output_dir)
        sweep_dir = str(hc.sweep.dir) if hc.sweep.dir else os.path.dirname(run_dir)
        basic = str(hc.sweeper.get("_target_", "")).endswith("BasicSweeper")
        parallel = not str(hc.launcher.get("_target_", "")).endswith("BasicLauncher")
    except Exception:  # noqa: BLE001 — not inside a Hydra job
        num, task, run_dir, sweep_dir, basic, parallel = "?", [], "", "", True, False
    shown = [o for o in task if _override_key(o) in swept or _override_key(o) not in command_keys]
    count = f"{num}/{total}" if basic and total is not None else f"{num}"
    return {"num": num, "task": task, "shown": shown, "label": f"[job {count} {' '.join(shown)}]".replace(" ]", "]"),
            "run_dir": run_dir, "sweep_dir": sweep_dir, "parallel": parallel}


def record_job(job: dict, **fields) -> None:
    path = os.environ.get(JOBS_ENV)
    if not path:
        return
    record = {"num": job["num"], "overrides": job["task"], "shown": job["shown"], "sweep_dir": job["sweep_dir"],
              **fields}
    name = f"{job['num']}-{uuid.uuid4().hex}.json"
    temporary = os.path.join(path, "." + name)
    try:
        with open(temporary, "w") as handle:
            json.dump(record, handle, default=float)
        os.replace(temporary, os.path.join(path, name))  # whole or not at all, also on NFS
    except OSError:  # the record folder is gone or unreachable: the job's own results stand regardless
        pass


def record_failure(job: dict, exc: BaseException, user_error: bool) -> None:
    record_job(job, status="failed", message=str(exc), user=user_error)


def record_result(job: dict, root: str, result) -> None:
    """A finished job's accuracies: the ANN's, and the SNN's at each simulated T."""
    result = result if isinstance(result, dict) else {}
    ann_acc = result.get("ann_acc", (result.get("metrics") or {}).get("test_acc"))
    frame = result.get("results")
    acc = {} if frame is None else {str(int(t)): float(a) for t, a in zip(frame["T"], frame["acc"])}
    record_job(job, status="ok", root=root, ann_acc=None if ann_acc is None else float(ann_acc), acc=acc)


def read_jobs(path: str) -> list[dict]:
    """The records in the folder ``path`` (files being written, or unreadable, are skipped)."""
    try:
        names = sorted(n for n in os.listdir(path) if n.endswith(".json") and not n.startswith("."))
    except OSError:
        return []
    jobs = []
    for name in names:
        try:
            with open(os.path.join(path, name)) as handle:
                jobs.append(json.load(handle))
        except (OSError, ValueError):
            continue
    return jobs


# At most this many Ts get a column in the end-of-sweep summary (the largest ones).
SUMMARY_TS = 4


def report_sweep(jobs: list[dict]) -> None:
    """The end of a multirun: one row per job (overrides, accuracies, status) and how to aggregate them."""
    if not jobs:
        return
    jobs = sorted(jobs, key=lambda j: (not str(j["num"]).isdigit(), int(j["num"]) if str(j["num"]).isdigit() else 0))
    steps = sorted({int(t) for j in jobs for t in (j.get("acc") or {})})[-SUMMARY_TS:]
    table = Table(title=f"multirun: {len(jobs)} job{'s' if len(jobs) != 1 else ''}")
    for name in ("job", "overrides", "ANN acc %", *(f"T={t}" for t in steps), "status"):
        table.add_column(name, justify="right" if name not in ("overrides", "status") else "left")
    for j in jobs:
        acc = j.get("acc") or {}
        status = "ok" if j.get("status") == "ok" else \
            "failed: " + (str(j.get("message", "")).strip().splitlines() or [""])[0][:80]
        ann = j.get("ann_acc")
        table.add_row(str(j["num"]), escape(" ".join(j.get("shown") or [])),
                      "" if ann is None else f"{ann:.2f}", *(f"{acc[str(t)]:.2f}" if str(t) in acc else ""
                                                             for t in steps), escape(status))
    console.print(table)
    sweep_dir = next((j["sweep_dir"] for j in jobs if j.get("sweep_dir")), None)
    if sweep_dir:
        root = next((j["root"] for j in jobs if j.get("root")), None)
        extra = f" paths.root={shlex.quote(root)}" if root and os.path.normpath(root) != "outputs" else ""
        console.print(f"results → {sweep_dir}\naggregate them: snnx table table.sweep_dir={shlex.quote(sweep_dir)}"
                      f"{extra}", soft_wrap=True, markup=False)


def report_failures(path: str, swept: list[str]) -> int:
    """Print the failed jobs of a multirun; return the exit status (0 when none failed)."""
    failures = [j for j in read_jobs(path) if j.get("status") != "ok"]
    if not failures:
        return 0
    failures.sort(key=lambda f: (str(f["num"])))
    print(f"snnx: error: {len(failures)} multirun job{'s' if len(failures) > 1 else ''} failed; the others "
          "finished and kept their results:", file=sys.stderr)
    for f in failures:
        shown = [o for o in f["overrides"] if _override_key(o) in swept] or f["overrides"]
        print(f"  job #{f['num']} ({' '.join(shown)}): {f['message']}", file=sys.stderr)
    return 2 if all(f["user"] for f in failures) else 1
