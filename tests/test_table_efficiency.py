"""`snnx table table=efficiency`: accuracy vs energy per image (SNN at each T, its ANN, the equal-bit QANN).

Synthetic results.csv files in results.csv's format (with the QANN columns the energy models add, or without
them, as older runs have), each with its .hydra/config.yaml; no training.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from snnx.errors import ConfigError, SnnxError
from snnx.tables import Layout, load_table
from snnx.tables.plot import draw_table, plot_table
from snnx.tables.render import rich_table

from test_tables import conf_layout, row, set_dotted

REPO = Path(__file__).resolve().parents[1]
SNNX = Path(sys.executable).parent / "snnx"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BASE_COLUMNS = ["run_id", "dataset", "model", "act", "L", "convert", "method", "T", "acc", "ann_acc",
                "conversion_loss", "spikes_per_neuron", "sops", "macs", "energy_mj", "seed", "ann_key",
                "config_hash", "created", "negative_spikes_per_neuron", "ann_macs", "ann_energy_mj", "passes",
                "time_steps_simulated"]
QANN_COLUMNS = ["energy_model", "qann_energy_mj", "qann_acc", "qann_bits", "energy_ratio"]


def bits_for(T: int) -> int:
    return math.ceil(math.log2(T + 1))


def write_run(root: Path, name: str, *, accs: dict, ann: float, ann_energy=4.52e-3, energy_per_t=2.1e-4,
              dataset="cifar10", model="vgg16", act="relu", convert="maxnorm", L=None, seed=0,
              qann: dict | None = None, energy_model: str | None = "horowitz45", config: dict | None = None) -> Path:
    """One run directory: results.csv (QANN columns when ``qann`` maps T → (acc, energy)) and .hydra/config.yaml.
    energy_model=None writes a results.csv from before the energy models (no energy_model, no QANN columns)."""
    run_dir = root / "runs" / name
    run_dir.mkdir(parents=True)
    cfg = {"seed": seed, "stage": "run", "paths": {"root": str(root)}, "dataset": {"name": dataset},
           "model": {"name": model}, "act": {"name": act, "L": L}, "convert": {"name": convert},
           "sim": {"T": sorted(accs)}}
    if energy_model is not None:
        cfg["energy"] = {"name": energy_model}
    chash = set_dotted(cfg, config)
    rows = []
    for T, acc in sorted(accs.items()):
        energy = float(f"{energy_per_t * T + 6.6e-4:.4g}")
        rec = {"run_id": name, "dataset": dataset, "model": model, "act": act, "L": L, "convert": convert,
               "method": convert, "T": T, "acc": acc, "ann_acc": ann, "conversion_loss": ann - acc,
               "spikes_per_neuron": 0.1 * T, "sops": 1e5 * T, "macs": 1e4, "energy_mj": energy, "seed": seed,
               "ann_key": "k" + name, "config_hash": chash, "created": "2026-01-01T00:00:00",
               "negative_spikes_per_neuron": 0.0, "ann_macs": 982500, "ann_energy_mj": ann_energy,
               "passes": "one pass for the sweep", "time_steps_simulated": T}
        if energy_model is not None:
            rec["energy_model"] = energy_model
            if qann is not None and T in qann:
                q_acc, q_energy = qann[T]
                rec.update(qann_acc=q_acc, qann_energy_mj=q_energy, qann_bits=L or bits_for(T),
                           energy_ratio=float(f"{energy / q_energy:.4g}"))
        rows.append(rec)
    columns = BASE_COLUMNS + (QANN_COLUMNS if energy_model is not None else [])
    pd.DataFrame(rows, columns=columns).to_csv(run_dir / "results.csv", index=False)
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return run_dir


def efficiency(**overrides) -> Layout:
    return conf_layout("efficiency", **overrides)


select = row


def qann_points(Ts, base_acc=88.0, e0=3.0e-4) -> dict:
    """The equal-bit QANN at each T: accuracy and energy rise with its bits."""
    return {T: (round(base_acc + 1.5 * bits_for(T), 2), float(f"{e0 * bits_for(T):.4g}")) for T in Ts}


def four_runs(root: Path) -> None:
    Ts = [1, 2, 4, 8, 16, 32]
    write_run(root, "maxnorm", accs=dict(zip(Ts, [10.0, 12.5, 40.2, 81.3, 90.1, 92.7])), ann=93.4,
              qann=qann_points(Ts))
    write_run(root, "msat", accs=dict(zip(Ts, [11.0, 30.5, 70.2, 89.3, 92.1, 93.0])), ann=93.4, convert="msat",
              qann=qann_points(Ts), energy_per_t=2.6e-4)
    write_run(root, "qcfs", accs=dict(zip(Ts, [60.0, 80.5, 90.2, 92.3, 93.1, 93.2])), ann=93.3, act="qcfs",
              convert="qcfs", L=4, qann={T: (93.3, 1.21e-3) for T in Ts}, energy_per_t=1.9e-4)
    write_run(root, "resnet", accs=dict(zip(Ts, [20.0, 42.5, 77.2, 88.3, 91.1, 91.9])), ann=92.5, model="resnet20",
              ann_energy=2.9e-3, qann=qann_points(Ts, 86.0, 2.0e-4), energy_per_t=1.5e-4)


# -- the CSV ----------------------------------------------------------------------------------
def test_csv_numbers_are_the_results_csv_inputs(tmp_path):
    four_runs(tmp_path)
    frame = load_table(efficiency(), tmp_path).frame
    assert list(frame.columns) == ["dataset", "model", "act", "convert", "setting", "energy_model", "T", "acc",
                                   "energy_mj", "qann_bits", "qann_acc", "qann_energy_mj", "energy_ratio", "ann_acc",
                                   "ann_energy_mj", "n", "config_hash"]
    for run_dir in sorted((tmp_path / "runs").iterdir()):
        source = pd.read_csv(run_dir / "results.csv")
        first = source.iloc[0]
        where = dict(model=first["model"], act=first["act"], convert=first["convert"])
        ann = select(frame, **where, T="")
        assert float(ann["ann_acc"]) == first["ann_acc"] and float(ann["ann_energy_mj"]) == first["ann_energy_mj"]
        assert ann["acc"] == ann["energy_mj"] == ann["qann_acc"] == ""  # the ANN row holds the ANN's numbers only
        assert ann["config_hash"] == first["config_hash"] and ann["energy_model"] == "horowitz45"
        for rec in source.to_dict("records"):
            got = select(frame, **where, T=str(rec["T"]))
            for column in ("acc", "energy_mj", "qann_acc", "qann_energy_mj", "energy_ratio"):
                assert float(got[column]) == pytest.approx(rec[column], rel=1e-12), (column, rec["T"])
            assert int(got["qann_bits"]) == rec["qann_bits"]
            assert got["ann_acc"] == got["ann_energy_mj"] == "" and got["n"] == "1"
    # one ANN row and one row per T, per run
    assert len(frame) == 4 * (1 + 6)


def test_seeds_average_and_table_T_picks_time_steps(tmp_path):
    for seed, accs in enumerate(({1: 10.0, 4: 50.0, 8: 90.0}, {1: 20.0, 4: 60.0, 8: 92.0})):
        write_run(tmp_path, f"s{seed}", accs=accs, ann=95.0 + seed, seed=seed, qann=qann_points([1, 4, 8]))
    frame = load_table(efficiency(T=[4, 8]), tmp_path).frame
    assert sorted(frame["T"]) == ["", "4", "8"]
    row = select(frame, T="4")
    assert row["acc"] == "55.00 ± 7.07" and row["n"] == "2"
    assert row["qann_bits"] == "3"  # both seeds' QANN has ⌈log2(5)⌉ = 3 bits
    assert select(frame, T="")["ann_acc"] == "95.50 ± 0.71"


# -- runs from before the QANN columns -------------------------------------------------------------
def test_runs_without_qann_columns_show_snn_and_ann_only(tmp_path):
    write_run(tmp_path, "old", accs={1: 10.0, 2: 40.0, 4: 80.0}, ann=95.0, energy_model=None)
    write_run(tmp_path, "new", accs={1: 30.0, 2: 60.0, 4: 90.0}, ann=95.0, convert="msat", qann=qann_points([1, 2, 4]))
    result = load_table(efficiency(), tmp_path)
    frame = result.frame
    old = frame[frame["convert"] == "maxnorm"]
    assert list(old["T"]) == ["", "1", "2", "4"]
    assert (old["qann_acc"] == "").all() and (old["qann_energy_mj"] == "").all() and (old["energy_ratio"] == "").all()
    assert select(frame, convert="maxnorm", T="4")["acc"] == "80.00"
    assert set(old["energy_model"]) == {"horowitz45"}  # the one model there was before energy=
    assert select(frame, convert="msat", T="4")["qann_bits"] == "3"
    assert any("1 run(s) have no qann_energy_mj" in note for note in result.notes)
    assert not any("energy models" in note for note in result.notes)
    old_only = load_table(efficiency(), tmp_path / "runs" / "old")
    fig = draw_table(old_only)
    assert fig is not None and len(fig.axes) == 1
    assert len(fig.axes[0].get_lines()) == 2  # the SNN line and the ANN star, no QANN
    view, _ = rich_table(old_only)
    assert "qann_acc" not in [c.header for c in view.columns]  # empty everywhere: not printed


def test_energy_ratio_is_derived_where_results_csv_has_the_qann_energy_but_no_ratio(tmp_path):
    run_dir = write_run(tmp_path, "r", accs={2: 50.0}, ann=95.0, qann={2: (90.0, 5.0e-4)})
    frame = pd.read_csv(run_dir / "results.csv").drop(columns=["energy_ratio"])
    frame.to_csv(run_dir / "results.csv", index=False)
    row = select(load_table(efficiency(), tmp_path).frame, T="2")
    assert float(row["energy_ratio"]) == pytest.approx(frame["energy_mj"].iloc[0] / 5.0e-4, rel=1e-3)


def test_a_qann_priced_but_not_measured_keeps_its_energy_in_the_csv_and_no_point(tmp_path):
    run_dir = write_run(tmp_path, "u", accs={1: 20.0, 4: 80.0}, ann=95.0, qann=qann_points([1, 4]))
    frame = pd.read_csv(run_dir / "results.csv").assign(qann_acc=float("nan"))  # results.csv leaves it empty
    frame.to_csv(run_dir / "results.csv", index=False)
    result = load_table(efficiency(), tmp_path)
    row = select(result.frame, T="4")
    assert row["qann_acc"] == "" and float(row["qann_energy_mj"]) == frame["qann_energy_mj"].iloc[1]
    assert any("no qann_acc" in note for note in result.notes)
    assert len(draw_table(result).axes[0].get_lines()) == 2  # SNN and ANN


# -- energy models ------------------------------------------------------------------------------
def test_mixed_energy_models_get_their_own_panels_and_a_note_naming_energy(tmp_path):
    write_run(tmp_path, "h", accs={1: 10.0, 4: 80.0}, ann=95.0, qann=qann_points([1, 4]))
    write_run(tmp_path, "m", accs={1: 10.0, 4: 80.0}, ann=95.0, qann=qann_points([1, 4], e0=9e-4),
              energy_model="memory", energy_per_t=8e-4, ann_energy=2e-2)
    result = load_table(efficiency(), tmp_path)
    assert sorted(set(result.frame["energy_model"])) == ["horowitz45", "memory"]
    assert len(result.frame) == 2 * 3  # never averaged together
    note = next(n for n in result.notes if "energy models" in n)
    assert "energy=" in note and "horowitz45: 1 run(s)" in note and "memory: 1 run(s)" in note
    fig = draw_table(result)
    labels = sorted(ax.get_xlabel() for ax in fig.axes if ax.get_xlabel())
    assert len(labels) == 2 and "energy=horowitz45" in labels[0] and "energy=memory" in labels[1]
    assert all(ax.get_xscale() == "log" for ax in fig.axes if ax.get_xlabel())
    one = load_table(efficiency(filters={"energy_model": "memory"}), tmp_path)
    assert set(one.frame["energy_model"]) == {"memory"} and not any("energy models" in n for n in one.notes)


# -- the plot ------------------------------------------------------------------------------------
def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_is_written_with_snn_ann_and_qann_per_run(tmp_path):
    four_runs(tmp_path)
    result = load_table(efficiency(), tmp_path)
    fig = draw_table(result)
    (ax,) = [a for a in fig.axes if a.get_xlabel()]  # one dataset, one energy model: one panel
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "accuracy (%)"
    lines = ax.get_lines()
    assert len(lines) == 4 * 3  # per run: SNN line, QANN line, ANN marker
    qcfs_qann = [ln for ln in lines if ln.get_linestyle() == "--" and len(ln.get_xdata()) == 1]
    assert len(qcfs_qann) == 1  # a QCFS ANN is its own QANN at every T: one point
    texts = {t.get_text() for t in ax.texts}
    assert {"T=1", "T=32", "1b", "6b", "4b"} <= texts
    assert fig._suptitle.get_text() == result.title
    out = plot_table(result, tmp_path / "tables" / "efficiency.png")
    width, height = png_size(out)
    assert 600 <= width <= 4000 and 400 <= height <= 4000 and out.stat().st_size > 20_000


# -- the layout's keys -----------------------------------------------------------------------------
def test_bad_keys_error_naming_them():
    with pytest.raises(ConfigError, match="table.value"):
        efficiency(value="sops")
    with pytest.raises(ConfigError, match="table.layout"):
        efficiency(layout="long")
    with pytest.raises(ConfigError, match="table.paper"):
        efficiency(paper="msat")
    with pytest.raises(ConfigError, match="table.columns"):
        efficiency(columns=["ANN", "T", "SNN best"])
    with pytest.raises(ConfigError, match="table.T"):
        efficiency(T=[">=64"])
    with pytest.raises(ConfigError, match=r"table.methods\[0\].ann"):
        efficiency(rows=["dataset", "method"], methods=[{"label": "ANN", "snnx": {"act": "relu"}, "ann": True}])
    with pytest.raises(ConfigError, match="table.kind"):
        efficiency(kind="energy")
    with pytest.raises(ConfigError, match="table.panels"):
        efficiency(panels=["arch"])


def test_composed_config_and_filters(tmp_path):
    from omegaconf import OmegaConf

    from snnx.app import compose

    cfg = compose("table", ["table=efficiency", "table.filters.model=resnet20", "table.T=[1,32]"])
    lay = Layout.from_dict(OmegaConf.to_container(cfg.table, resolve=True))
    assert (lay.kind, lay.name, lay.filters) == ("efficiency", "efficiency", {"model": "resnet20"})
    four_runs(tmp_path)
    frame = load_table(lay, tmp_path).frame
    assert set(frame["model"]) == {"resnet20"} and list(frame["T"]) == ["", "1", "32"]
    with pytest.raises(ConfigError, match="table.filters.bogus"):
        load_table(efficiency(filters={"bogus": 1}), tmp_path)
    with pytest.raises(SnnxError, match="table is empty"):
        load_table(efficiency(filters={"model": "lenet"}), tmp_path)
    labelled = load_table(efficiency(rows=["dataset", "method"], methods=[
        {"label": "MSAT", "snnx": {"convert": "msat"}}, {"label": "QCFS", "snnx": {"act": "qcfs"}}]), tmp_path).frame
    assert sorted(set(labelled["method"])) == ["MSAT", "QCFS"]


def test_cli_writes_csv_and_png_without_torch(tmp_path):
    four_runs(tmp_path / "sweep")
    root = tmp_path / "root"
    proc = subprocess.run([sys.executable, "-X", "importtime", str(SNNX), "table", "table=efficiency",
                           f"table.sweep_dir={tmp_path / 'sweep'}", f"paths.root={root}", "table.name=eff"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "pandas" in imported and "torch" not in imported
    frame = pd.read_csv(root / "tables" / "eff.csv")
    assert len(frame) == 28 and frame["qann_energy_mj"].notna().sum() == 24
    assert png_size(root / "tables" / "eff.png")[0] > 300
    assert "qann_energy_mj" in proc.stdout and "Accuracy vs energy" in proc.stdout
