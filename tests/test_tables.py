"""`snnx table`: layouts, pivoting, reported rows, seeds, filters, plots, and the CLI.

Synthetic results.csv files (with the run's .hydra/config.yaml, layers.csv and
neurons.csv where a test needs them) are written into tmp dirs; no training.
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
from snnx.tables import Layout, load_paper, load_table
from snnx.tables.pivot import final_time_step
from snnx.tables.plot import plot_table

REPO = Path(__file__).resolve().parents[1]
SNNX = Path(sys.executable).parent / "snnx"
RESULT_COLUMNS = ["run_id", "dataset", "model", "act", "L", "convert", "method", "T", "acc", "ann_acc",
                  "conversion_loss", "spikes_per_neuron", "sops", "macs", "energy_mj", "seed", "ann_key",
                  "config_hash", "created", "negative_spikes_per_neuron", "ann_macs", "ann_energy_mj", "passes",
                  "time_steps_simulated"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"



def set_dotted(cfg: dict, config: dict | None) -> str:
    """Set ``config``'s dotted keys in ``cfg`` (a run's composed config); its hash, as a config_hash."""
    for dotted, value in (config or {}).items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return f"h{abs(hash(json.dumps(cfg, sort_keys=True, default=str))) % 10**12:012d}"


def write_run(root: Path, name: str, *, accs: dict, ann: float, dataset="mnist5k", model="lenet", act="qcfs",
              convert="qcfs", seed=0, L=4, config: dict | None = None, layers: dict | None = None,
              neurons: list | None = None, created="2026-01-01T00:00:00", with_config=True) -> Path:
    """One run directory like `snnx run` leaves: results.csv (+ .hydra/config.yaml, layers.csv, neurons.csv)."""
    run_dir = root / "runs" / name
    run_dir.mkdir(parents=True)
    cfg = {"seed": seed, "stage": "run", "paths": {"root": str(root)},
           "dataset": {"name": dataset, "limit_test": None}, "model": {"name": model, "width": 1.0},
           "act": {"name": act, "L": L, "k": None}, "train": {"epochs": 1, "two_stage": False, "weight_quant": "none"},
           "convert": {"name": convert, "variant": "TS", "use_dtt": True, "use_det": True, "integer": False},
           "sim": {"T": sorted(accs)}}
    chash = set_dotted(cfg, config)
    rows = []
    for T, acc in sorted(accs.items()):
        rows.append({"run_id": name, "dataset": dataset, "model": model, "act": act, "L": L, "convert": convert,
                     "method": f"{convert}; one pass for the sweep", "T": T, "acc": acc, "ann_acc": ann,
                     "conversion_loss": ann - acc, "spikes_per_neuron": 0.1 * T, "sops": 1e5 * T, "macs": 1e4,
                     "energy_mj": 1e-4 * T, "seed": seed, "ann_key": "k" + name, "config_hash": chash,
                     "created": created, "negative_spikes_per_neuron": 0.0, "ann_macs": 1e6, "ann_energy_mj": 5e-3,
                     "passes": "one pass for the sweep", "time_steps_simulated": T})
    pd.DataFrame(rows, columns=RESULT_COLUMNS).to_csv(run_dir / "results.csv", index=False)
    if with_config:
        (run_dir / ".hydra").mkdir()
        (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    if layers:
        recs = [{"T": T, "layer": layer, "firing_rate": v, "sin_ratio": v / 10, "clip_error": 0.0,
                 "floor_error": 0.0, "ann_error": 0.0}
                for layer, per_t in layers.items() for T, v in per_t.items()]
        pd.DataFrame(recs).to_csv(run_dir / "layers.csv", index=False)
    if neurons:
        pd.DataFrame(neurons, columns=["layer", "neuron", "threshold_min", "threshold_max", "channels", "v_init"]) \
            .to_csv(run_dir / "neurons.csv", index=False)
    return run_dir


def layout(**overrides) -> Layout:
    raw = {"name": "t", "title": "test", "rows": ["dataset", "model", "act", "convert"], "columns": ["ANN", "T"]}
    raw.update(overrides)
    return Layout.from_dict(raw)


def conf_layout(name: str, **overrides) -> Layout:
    raw = yaml.safe_load((REPO / "conf" / "table" / f"{name}.yaml").read_text())
    raw.update(overrides)
    return Layout.from_dict(raw)


def row(frame: pd.DataFrame, **where) -> dict:
    sel = frame
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, f"{len(sel)} rows match {where}:\n{frame}"
    return sel.iloc[0].to_dict()


# -- pivoting ----------------------------------------------------------------------
def test_summary_pivot_rows_columns_and_provenance(tmp_path):
    a = write_run(tmp_path, "a", accs={1: 10.0, 2: 50.0, 4: 90.0}, ann=95.0)
    write_run(tmp_path, "b", accs={1: 20.0, 2: 60.0, 4: 80.0}, ann=96.0, act="relu", convert="maxnorm", L=None)
    result = load_table(layout(), tmp_path)
    frame = result.frame
    assert list(frame.columns) == ["dataset", "model", "act", "convert", "setting", "source", "ANN", "T=1", "T=2",
                                   "T=4", "n", "config_hash", "reference"]
    q = row(frame, act="qcfs")
    assert (q["source"], q["ANN"], q["T=1"], q["T=2"], q["T=4"], q["n"]) == ("snnx", "95.00", "10.00", "50.00", "90.00", "1")
    assert q["config_hash"] == pd.read_csv(a / "results.csv")["config_hash"].iloc[0]
    assert row(frame, act="relu")["T=4"] == "80.00"


def test_missing_cells_are_empty_never_zero(tmp_path):
    write_run(tmp_path, "a", accs={1: 10.0, 2: 50.0}, ann=95.0)
    write_run(tmp_path, "b", accs={1: 20.0, 2: 60.0, 8: 0.0}, ann=96.0, convert="cos")
    result = load_table(layout(), tmp_path)
    assert row(result.frame, convert="qcfs")["T=8"] == ""
    assert row(result.frame, convert="cos")["T=8"] == "0.00"  # a measured 0 stays a 0
    out = tmp_path / "t.csv"
    result.frame.to_csv(out, index=False)
    back = pd.read_csv(out)
    assert math.isnan(back.loc[back["convert"] == "qcfs", "T=8"].iloc[0])


def test_seeds_give_mean_std_and_n(tmp_path):
    for seed, acc in ((0, 90.0), (1, 92.0), (2, 94.0)):
        accs = {1: acc - 50, 4: acc} if seed < 2 else {4: acc}
        write_run(tmp_path, f"s{seed}", accs=accs, ann=95.0 + seed, seed=seed)
    frame = load_table(layout(), tmp_path).frame
    assert len(frame) == 1
    r = frame.iloc[0]
    assert r["T=4"] == "92.00 ± 2.00" and r["n"] == "3"
    assert r["ANN"] == "96.00 ± 1.00"
    assert r["T=1"] == "41.00 ± 1.41 (n=2)"  # a cell with fewer seeds than its row says so
    assert len(r["config_hash"].split()) == 3


def test_rerun_of_same_seed_replaces_not_averages(tmp_path):
    write_run(tmp_path, "old", accs={4: 50.0}, ann=95.0, created="2026-01-01T00:00:00")
    write_run(tmp_path, "new", accs={4: 70.0, 8: 80.0}, ann=95.0, created="2026-01-02T00:00:00",
              config={"sim.T": [4, 8]})
    r = load_table(layout(), tmp_path).frame.iloc[0]
    assert (r["T=4"], r["T=8"], r["n"]) == ("70.00", "80.00", "1")


def test_runs_differing_beyond_seed_get_own_rows(tmp_path):
    write_run(tmp_path, "l2", accs={4: 60.0}, ann=90.0, L=2, config={"act.L": 2})
    write_run(tmp_path, "l8", accs={4: 80.0}, ann=95.0, L=8, config={"act.L": 8})
    frame = load_table(layout(), tmp_path).frame
    assert sorted(frame["setting"]) == ["act.L=2", "act.L=8"]
    assert row(frame, setting="act.L=8")["T=4"] == "80.00"


def test_runs_without_saved_config_still_tabulate(tmp_path):
    write_run(tmp_path, "a", accs={2: 40.0, 4: 60.0}, ann=90.0, with_config=False)
    frame = load_table(layout(), tmp_path).frame
    assert row(frame, act="qcfs")["T=4"] == "60.00"


def test_filters_on_columns_and_config_keys(tmp_path):
    write_run(tmp_path, "l2", accs={4: 60.0}, ann=90.0, L=2, config={"act.L": 2})
    write_run(tmp_path, "l8", accs={4: 80.0}, ann=95.0, L=8, config={"act.L": 8})
    write_run(tmp_path, "d", accs={4: 70.0}, ann=95.0, dataset="digits")
    frame = load_table(layout(filters={"L": 8}), tmp_path).frame
    assert list(frame["T=4"]) == ["80.00"]
    frame = load_table(layout(filters={"dataset": ["digits"], "act.name": "qcfs"}), tmp_path).frame
    assert list(frame["dataset"]) == ["digits"]
    with pytest.raises(ConfigError, match="table.filters.nope"):
        load_table(layout(filters={"nope": 1}), tmp_path)
    with pytest.raises(SnnxError, match="empty"):
        load_table(layout(filters={"dataset": "cifar10"}), tmp_path)


def test_T_columns_restricted_and_open_ended(tmp_path):
    write_run(tmp_path, "a", accs={2: 40.0, 4: 60.0, 64: 97.0, 128: 98.0}, ann=99.0)
    frame = load_table(layout(T=[2, ">=64"], columns=["ANN", "T", "loss", "SNN best"]), tmp_path).frame
    r = frame.iloc[0]
    assert "T=4" not in frame.columns
    assert (r["T=2"], r["T>=64"], r["loss"], r["SNN best"]) == ("40.00", "98.00", "1.00", "98.00")


# -- paper layouts --------------------------------------------------------------------
def test_paper_layout_reported_and_snnx_side_by_side(tmp_path):
    write_run(tmp_path, "q", accs={2: 90.0, 4: 93.0, 8: 94.5}, ann=95.0, dataset="cifar10", model="vgg16")
    write_run(tmp_path, "cs", accs={1: 94.0, 2: 95.0}, ann=95.5, dataset="cifar10", model="vgg16", act="csqcfs",
              convert="cos")
    result = load_table(conf_layout("csqcfs_table1"), tmp_path)
    frame = result.frame
    vgg = frame[(frame["dataset"] == "cifar10") & (frame["model"] == "vgg16")]
    rep = row(vgg, method="QCFS", source="reported")
    assert (rep["ANN"], rep["T=2"], rep["T=32"], rep["T=1"]) == ("95.52", "91.18", "95.54", "")
    assert rep["reference"] == "csqcfs Table 1 (Bu et al., 2023)" and rep["config_hash"] == ""
    mine = row(vgg, method="QCFS", source="snnx")
    assert (mine["T=2"], mine["T=8"], mine["T=16"]) == ("90.00", "94.50", "")
    assert mine["config_hash"].startswith("h")
    # Methods snnx does not implement are reported-only rows.
    srp = vgg[vgg["method"] == "SRP"]
    assert list(srp["source"]) == ["reported"]
    ours = row(vgg, method="CS-QCFS (ours)", source="snnx")
    assert ours["setting"] == "convert=cos"
    # Rows keep the paper's order within an architecture, reported before snnx.
    assert list(vgg["method"]) == ["QCFS", "QCFS", "SRP", "COS", "CS-QCFS (ours)", "CS-QCFS (ours)"]
    # Every architecture of the paper's table is there.
    assert set(frame["model"]) == {"resnet18", "vgg16", "resnet20", "resnet50", "resnet101"}


def test_embedded_rows_keep_their_own_dataset_and_model(tmp_path):
    write_run(tmp_path, "q", accs={1: 30.0, 2: 80.0, 4: 97.0}, ann=98.0)  # mnist5k / lenet
    plain = load_table(conf_layout("csqcfs_table1"), tmp_path)
    assert set(plain.frame["source"]) == {"reported"}
    assert any("embedded" in note for note in plain.notes)
    emb = load_table(conf_layout("csqcfs_table1", embedded=True), tmp_path)
    snnx = emb.frame[emb.frame["source"] == "snnx"]
    assert list(zip(snnx["dataset"], snnx["model"], snnx["method"])) == [("mnist5k", "lenet", "QCFS")]
    assert not ((emb.frame["dataset"] == "cifar10") & (emb.frame["source"] == "snnx")).any()
    assert "embedded scale" in emb.title and "mnist5k/lenet" in emb.title
    # The embedded rows come after the paper's groups.
    assert emb.frame["source"].iloc[-1] == "snnx"


def test_long_layout_has_T_as_row_key(tmp_path):
    write_run(tmp_path, "ts", accs={16: 90.0, 32: 92.0, 64: 93.0, 128: 93.1}, ann=93.2, dataset="cifar10",
              model="vgg16", act="clip", convert="shift", L=None)
    frame = load_table(conf_layout("denggu_table1"), tmp_path).frame
    assert list(frame.columns[:4]) == ["dataset", "model", "method", "T"]
    vgg = frame[(frame["dataset"] == "cifar10") & (frame["model"] == "vgg16") & (frame["method"] == "Ours (TS)")]
    assert list(vgg["T"]) == ["16", "16", "32", "32", "64", "64", "128", "128"]
    rep16, mine16 = vgg.iloc[0], vgg.iloc[1]
    assert (rep16["source"], rep16["acc"], rep16["conversion_loss"]) == ("reported", "92.29", "0.05")
    assert (mine16["source"], mine16["acc"], mine16["conversion_loss"]) == ("snnx", "90.00", "3.20")
    rmp = frame[(frame["method"] == "RMP") & (frame["model"] == "vgg16") & (frame["dataset"] == "cifar10")]
    assert list(rmp["T"]) == ["1536"]  # reported lengths are kept as printed


def test_denggu_table1_loss_against_both_the_relu_and_the_threshold_ann(tmp_path):
    """Table 1's a% (b%): a = ReLU ANN − SNN (the act=relu run of the same net and seed), b = own ANN − SNN."""
    same = {"train.epochs": 300, "train.lr": 0.01, "model.batch_norm": False}
    for seed, (relu_ann, clip_ann) in enumerate(((92.10, 92.40), (92.30, 92.50))):
        write_run(tmp_path, f"ts{seed}", accs={16: 90.0 + seed, 32: 92.0, 64: 92.2}, ann=clip_ann, dataset="cifar10",
                  model="vgg16", act="clip", convert="shift", L=None, seed=seed, config=same)
        write_run(tmp_path, f"t{seed}", accs={400: 92.3, 512: 92.35, 600: 92.4}, ann=clip_ann, dataset="cifar10",
                  model="vgg16", act="clip", convert="shift", L=None, seed=seed,
                  config={**same, "convert.variant": "T"})
        write_run(tmp_path, f"s{seed}", accs={512: 92.0 - seed}, ann=relu_ann, dataset="cifar10", model="vgg16",
                  act="relu", convert="shift", L=None, seed=seed, config={**same, "convert.variant": "S"})
    # A newer ReLU ANN trained otherwise (another lr; converted by maxnorm, so in no row) is not the twin of
    # these runs, and a net with no ReLU twin gets an empty cell.
    write_run(tmp_path, "s-other", accs={512: 10.0}, ann=50.0, dataset="cifar10", model="vgg16", act="relu",
              convert="maxnorm", L=None, config={**same, "train.lr": 0.1}, created="2026-02-01T00:00:00")
    write_run(tmp_path, "ts-alone", accs={16: 80.0}, ann=85.0, dataset="cifar10", model="cifarnet", act="clip",
              convert="shift", L=None, config=same)
    frame = load_table(conf_layout("denggu_table1"), tmp_path).frame
    assert list(frame.columns[4:9]) == ["setting", "source", "acc", "conversion_loss_relu", "conversion_loss"]

    def both(label, T, accs, anns_relu, anns_clip):
        """mean ± std (ddof 1) over the two seeds of ANN − SNN, from the numbers written above."""
        def text(values):
            mean = sum(values) / 2
            std = (sum((v - mean) ** 2 for v in values) / 1) ** 0.5
            return f"{mean:.2f} ± {std:.2f}"
        mine = row(frame, method=label, T=T, source="snnx", model="vgg16")
        assert mine["conversion_loss_relu"] == text([a - s for a, s in zip(anns_relu, accs)])
        assert mine["conversion_loss"] == text([a - s for a, s in zip(anns_clip, accs)])
        return mine

    both("Ours (TS)", "16", [90.0, 91.0], [92.10, 92.30], [92.40, 92.50])
    both("Ours (T)", "400-600", [92.35, 92.35], [92.10, 92.30], [92.40, 92.50])
    # For S the ANN is the ReLU one: the two losses agree.
    both("Ours (S)", "512", [92.0, 91.0], [92.10, 92.30], [92.10, 92.30])
    alone = row(frame, method="Ours (TS)", T="16", source="snnx", model="cifarnet")
    assert (alone["conversion_loss"], alone["conversion_loss_relu"]) == ("5.00", "")
    # The paper's two printed numbers land in the same columns: -0.2% (0.05%) for VGG-16 at T = 16.
    rep = row(frame, method="Ours (TS)", T="16", source="reported", model="vgg16", dataset="cifar10")
    assert (rep["acc"], rep["conversion_loss_relu"], rep["conversion_loss"]) == ("92.29", "-0.2", "0.05")
    rep_t = row(frame, method="Ours (T)", T="400-600", source="reported", model="vgg16", dataset="cifar10")
    assert (rep_t["conversion_loss_relu"], rep_t["conversion_loss"]) == ("-0.17", "0.08")


def test_denggu_tables_2_and_3_average_400_600_per_row(tmp_path):
    """App. A.2: (1) ReLU ANN + threshold balancing, (2) threshold ReLU, (3) threshold + constant shift θ/1600;
    each cell the mean over the simulated T in [400, 600]."""
    long_t = (400, 450, 500, 512, 550, 600)

    def accs(base):
        return {16: 10.0, **{T: base + 0.01 * i for i, T in enumerate(long_t)}, 1000: 0.0}

    common = dict(dataset="cifar10", model="vgg16_rathi", L=None)
    write_run(tmp_path, "relu", accs=accs(91.0), ann=92.0, act="relu", convert="maxnorm", **common)
    write_run(tmp_path, "t", accs=accs(92.0), ann=92.3, act="clip", convert="shift",
              config={"convert.variant": "T", "convert.shift_T": None}, **common)
    write_run(tmp_path, "ts800", accs=accs(93.0), ann=92.3, act="clip", convert="shift",
              config={"convert.variant": "TS", "convert.shift_T": 800}, **common)
    # The per-T shift (θ/2T, Table 1's TS) is not A.2's constant one: in no row of Table 2.
    write_run(tmp_path, "ts", accs=accs(50.0), ann=92.3, act="clip", convert="shift",
              config={"convert.variant": "TS", "convert.shift_T": None}, **common)
    write_run(tmp_path, "c100", accs=accs(70.0), ann=70.5, act="clip", convert="shift", dataset="cifar100",
              model="resnet20_sengupta", L=None, config={"convert.variant": "T"})
    frame = load_table(conf_layout("denggu_table2"), tmp_path).frame
    assert list(frame.columns[:7]) == ["dataset", "model", "method", "setting", "source", "ANN", "T=400-600"]

    def mean(base):
        values = [base + 0.01 * i for i in range(len(long_t))]
        return f"{sum(values) / len(values):.2f}"

    for label, base, ann in (("ReLU", 91.0, "92.00"), ("ReLU+threshold", 92.0, "92.30"),
                             ("ReLU+threshold+shift", 93.0, "92.30")):
        mine = row(frame, method=label, source="snnx")
        # Rathi's VGG-16 (App. A.1) sits in the paper's VGG-16 group, its own name in the setting.
        assert (mine["model"], mine["setting"], mine["T=400-600"], mine["ANN"]) == \
            ("vgg16", "model=vgg16_rathi", mean(base), ann)
        reported = frame.index[(frame["method"] == label) & (frame["source"] == "reported") & (frame["model"] == "vgg16")]
        assert frame.index.get_loc(reported[0]) + 1 == frame.index.get_loc(frame.index[
            (frame["method"] == label) & (frame["source"] == "snnx")][0])  # right below the paper's cell
    assert not (frame["T=400-600"] == mean(50.0)).any()
    rep = row(frame, method="ReLU+threshold+shift", source="reported", model="vgg16")
    assert (rep["dataset"], rep["T=400-600"]) == ("cifar10", "92.26")
    assert set(frame["dataset"]) == {"cifar10"}
    # Table 1's per-T TS row takes the per-T run and leaves the constant shift out.
    t1 = load_table(conf_layout("denggu_table1"), tmp_path).frame
    assert row(t1, method="Ours (TS)", source="snnx", T="16")["acc"] == "10.00"
    assert row(t1, method="Ours (TS)", source="snnx", T="400-600")["acc"] == mean(50.0)
    t3 = load_table(conf_layout("denggu_table3"), tmp_path).frame
    mine = row(t3, method="ReLU+threshold", source="snnx")
    assert (mine["dataset"], mine["model"], mine["setting"], mine["T=400-600"]) == \
        ("cifar100", "resnet20", "model=resnet20_sengupta", mean(70.0))
    assert row(t3, method="ReLU", source="reported", model="resnet20")["T=400-600"] == "66.74"


def test_final_time_step():
    assert final_time_step({1: 10.0, 2: 50.0, 4: 80.0, 8: 90.0, 16: 90.0, 32: 90.0}) == 8
    assert final_time_step({1: 10.0, 2: 90.0, 4: 80.0, 8: 90.0}) == 8  # changed again at 8
    assert final_time_step({8: 7, 1: 2, 4: 7, 2: 5}) == 4  # correct counts, T in any order
    assert final_time_step({1: 50.0, 2: 99.1, 3: 99.1 + 1e-12}) == 2  # a CSV round trip's last bit is no change
    assert final_time_step({4: 1.0}) == 4
    assert final_time_step({}) is None


def test_final_time_step_and_ternary_rows(tmp_path):
    accs = {1: 80.0, 2: 97.0, 3: 98.9, 4: 99.0, 5: 99.1, 6: 99.1, 7: 99.1}
    write_run(tmp_path, "k0", accs=accs, ann=99.2, dataset="mnist", act="quant", convert="allint", L=None,
              config={"act.k": 0, "train.weight_quant": "ternary", "convert.integer": True})
    frame = load_table(conf_layout("allint_table1"), tmp_path).frame
    mine = row(frame, method="SNN k=0, ternary W, int θ", source="snnx")
    assert (mine["ANN"], mine["final acc"], mine["final T"]) == ("99.20", "99.10", "5")
    rep = row(frame, method="SNN k=0, ternary W, int θ", source="reported")
    assert (rep["final acc"], rep["final T"]) == ("99.42", "6")
    assert row(frame, method="ANN (fp weights)")["ANN"] == "99.45"


def test_threshold_spread_from_neurons_csv(tmp_path):
    neurons = [("f0", "IFNeuron", 1.0, 3.0, 8, 0.5), ("f1", "IFNeuron", 2.0, 3.0, 8, 0.5),
               ("fc", "IFNeuron", 5.0, 5.0, 1, 0.5)]
    write_run(tmp_path, "cs", accs={4: 90.0}, ann=91.0, dataset="cifar10", model="vgg16", act="csqcfs",
              neurons=neurons)
    frame = load_table(conf_layout("csqcfs_table5"), tmp_path).frame
    mine = row(frame, method="CS-QCFS", source="snnx", model="vgg16")
    assert (mine["MaxDiff"], mine["AvgDiff"]) == ("200.00", "125.00")
    assert row(frame, method="CS-QCFS", source="reported", model="vgg16", dataset="cifar10")["MaxDiff"] == "55.3"


def test_every_table_config_composes_and_places_every_reported_cell():
    from omegaconf import OmegaConf

    from snnx.app import compose
    from snnx.tables import build_table

    names = sorted(p.stem for p in (REPO / "conf" / "table").glob("*.yaml"))
    for wanted in ("summary", "csqcfs_table1", "csqcfs_table2", "csqcfs_table3", "csqcfs_table4", "csqcfs_table5",
                   "denggu_table1", "denggu_table2", "denggu_table3", "denggu_table4", "denggu_table5", "msat_table2", "msat_ablation", "msat_sin",
                   "msat_rate", "allint_table1", "allint_table2", "allint_table3", "allint_table4", "allint_table5"):
        assert wanted in names
    for name in names:
        cfg = compose("table", [f"table={name}"])
        lay = Layout.from_dict(OmegaConf.to_container(cfg.table, resolve=True))
        assert lay.name == name
        if lay.paper and lay.kind == "accuracy" and lay.reported_rest:
            reported = load_paper(lay.paper, lay.paper_tables)
            result = build_table(lay, pd.DataFrame(), reported)
            placed = sum(len(r.cells) for r in result.rows)
            assert placed == len(reported), f"{name}: {placed} of {len(reported)} reported cells placed"
            assert not result.notes, (name, result.notes)


def test_packaged_paper_tables_match_shared_copy():
    shared = REPO.parent / "shared" / "paper_tables"
    packaged = REPO / "snnx" / "paper_tables"
    for paper in ("csqcfs", "denggu", "msat", "allint"):
        assert len(load_paper(paper)) > 100
        if shared.is_dir():
            assert (packaged / f"{paper}.csv").read_bytes() == (shared / f"{paper}.csv").read_bytes()


def test_aliases_put_runs_in_the_paper_group_and_errors_name_the_key(tmp_path):
    write_run(tmp_path, "a", accs={4: 90.0}, ann=91.0, model="lenet_big")
    write_run(tmp_path, "b", accs={4: 80.0}, ann=81.0)
    frame = load_table(layout(aliases={"model": {"lenet_big": "lenet"}}), tmp_path).frame
    assert sorted(zip(frame["model"], frame["setting"], frame["T=4"])) == [("lenet", "", "80.00"),
                                                                          ("lenet", "model=lenet_big", "90.00")]
    with pytest.raises(ConfigError, match="table.aliases.method"):
        conf_layout("denggu_table2", aliases={"method": {"a": "b"}})
    with pytest.raises(ConfigError, match="table.aliases.model"):
        conf_layout("denggu_table2", aliases={"model": ["vgg16"]})


def test_layout_errors_name_the_key():
    with pytest.raises(ConfigError, match="table.columns"):
        layout(columns=["ANN", "bogus"])
    with pytest.raises(ConfigError, match="table.T"):
        layout(T=[0])
    with pytest.raises(ConfigError, match="table.paper"):
        load_paper("nosuchpaper")
    with pytest.raises(ConfigError, match="table.paper_tables"):
        load_paper("msat", ["Table 9"])
    with pytest.raises(ConfigError, match=r"table.methods\[0\]"):
        layout(rows=["dataset", "method"], methods=[{"label": "x"}])


# -- figures ----------------------------------------------------------------------------
def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_png_is_valid_and_sensible(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path, f"q{seed}", accs={2: 90.0 + seed, 4: 93.0, 8: 94.5 + seed}, ann=95.0, dataset="cifar10",
                  model="vgg16", seed=seed)
    result = load_table(conf_layout("csqcfs_table1"), tmp_path)
    out = plot_table(result, tmp_path / "tables" / "csqcfs_table1.png")
    width, height = png_size(out)
    assert 800 <= width <= 4000 and 500 <= height <= 4000
    assert out.stat().st_size > 20_000
    assert not list(out.parent.glob(".*.tmp"))


def test_bar_plot_for_tables_without_T(tmp_path):
    write_run(tmp_path, "k0", accs={1: 98.0, 2: 99.0, 3: 99.0}, ann=99.2, dataset="mnist", act="quant",
              convert="allint", L=None, config={"act.k": 0})
    out = plot_table(load_table(conf_layout("allint_table1"), tmp_path), tmp_path / "b.png")
    assert png_size(out)[0] > 500


def test_layers_kind_per_layer_table_and_plot(tmp_path):
    per_layer = {"conv1": {1: 0.1, 2: 0.2, 4: 0.3}, "conv2": {1: 0.05, 2: 0.1, 4: 0.2}, "fc": {1: 0.0, 2: 0.01, 4: 0.1}}
    write_run(tmp_path, "if", accs={1: 10.0, 2: 20.0, 4: 40.0}, ann=99.0, act="relu", convert="maxnorm", L=None,
              layers=per_layer)
    write_run(tmp_path, "msat", accs={1: 30.0, 2: 60.0, 4: 90.0}, ann=99.0, act="relu", convert="msat", L=None,
              layers=per_layer)
    result = load_table(conf_layout("msat_sin"), tmp_path)
    frame = result.frame
    assert list(frame.columns[:4]) == ["dataset", "model", "method", "layer"]
    msat = frame[frame["method"] == "MSAT"]
    assert list(msat["layer"]) == ["conv1", "conv2", "fc"]
    assert row(frame, method="MSAT", layer="conv2")["T=4"] == "0.02"
    for name in ("msat_sin", "msat_rate"):
        out = plot_table(load_table(conf_layout(name), tmp_path), tmp_path / f"{name}.png")
        assert png_size(out)[0] > 500


# -- the CLI ------------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SNNX), "table", *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_cli_summary_writes_csv_and_png(tmp_path):
    write_run(tmp_path, "a", accs={1: 10.0, 2: 50.0, 4: 90.0}, ann=95.0)
    # -X importtime lists every module the command imported: a table needs no torch (it starts in ~1.5 s, not 5).
    proc = subprocess.run([sys.executable, "-X", "importtime", str(SNNX), "table", "table=summary",
                           f"paths.root={tmp_path}"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "pandas" in imported and "torch" not in imported
    csv = tmp_path / "tables" / "summary.csv"
    assert pd.read_csv(csv)["T=4"].iloc[0] == pytest.approx(90.0)
    assert png_size(tmp_path / "tables" / "summary.png")[0] > 300
    assert "T=4" in proc.stdout


def test_cli_without_results_is_a_one_paragraph_error(tmp_path):
    proc = run_cli("table=summary", f"paths.root={tmp_path}")
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert "no results.csv" in err and "snnx run" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_filters_can_be_added_and_dropped_from_the_command_line():
    from omegaconf import OmegaConf

    from snnx.app import compose

    cfg = compose("table", ["table=csqcfs_table1", "table.filters.L=4", "table.filters.dataset=null",
                            "table.embedded=true", "table.embedded_filters.dataset=null"])
    lay = Layout.from_dict(OmegaConf.to_container(cfg.table, resolve=True))
    assert lay.filters == {"model": ["resnet18", "vgg16", "resnet20", "resnet50", "resnet101"], "L": 4}
    assert lay.snnx_filters() == {"L": 4}


def test_paper_layout_without_any_run_shows_the_reported_table(tmp_path):
    result = load_table(conf_layout("msat_table2"), tmp_path)
    assert set(result.frame["source"]) == {"reported"}
    assert any("no results.csv" in note for note in result.notes)
    burst = row(result.frame, method="Burst", dataset="cifar100", model="resnet20")
    assert (burst["ANN"], burst["T=32"], burst["SNN best"]) == ("80.69", "76.39", "80.72")
    with pytest.raises(SnnxError, match="no results.csv"):
        load_table(layout(), tmp_path)


def test_multirun_directories_are_found(tmp_path):
    for n, L in enumerate((2, 4)):
        run_dir = write_run(tmp_path, f"m{n}", accs={4: 50.0 + L}, ann=90.0, L=L, config={"act.L": L})
        target = tmp_path / "multirun" / "2026-01-01" / "12-00-00_run" / str(n)
        target.parent.mkdir(parents=True, exist_ok=True)
        run_dir.rename(target)
    frame = load_table(layout(), tmp_path).frame
    assert sorted(frame["T=4"]) == ["52.00", "54.00"]


# -- CS-QCFS Tables 6 and 7 (Yang et al. 2025, §5.7) -----------------------------------
def test_csqcfs_table7_ops_and_energy_per_image_with_the_ann_row(tmp_path):
    write_run(tmp_path, "q", accs={1: 60.0, 4: 75.0}, ann=78.0, dataset="cifar100", model="resnet50")
    write_run(tmp_path, "cs", accs={1: 70.0, 4: 77.0}, ann=78.5, dataset="cifar100", model="resnet50",
              act="csqcfs", convert="cos", config={"train.two_stage": True})
    result = load_table(conf_layout("csqcfs_table7"), tmp_path)
    frame = result.frame
    assert list(frame.columns[:4]) == ["dataset", "model", "method", "T"]
    assert list(frame.columns[6:9]) == ["acs_m", "macs_m", "energy_mj"]
    # The paper states no T: its cells sit at an empty T, as printed.
    rep = row(frame, method="ANN", source="reported")
    assert (rep["T"], rep["acs_m"], rep["macs_m"], rep["energy_mj"]) == ("", "0", "1310", "6.026")
    assert row(frame, method="SNN_CS-QCFS", source="reported")["energy_mj"] == "0.0862"  # the +10.51% is in the CSV's note
    # snnx's ANN row: each run's ANN once, at no T: no ACs, ann_macs (1e6) in millions, ann_energy_mj.
    anns = frame[(frame["method"] == "ANN") & (frame["source"] == "snnx")]
    assert sorted(anns["setting"]) == ["act=csqcfs", "act=qcfs"]
    assert set(anns["T"]) == {""} and set(anns["acs_m"]) == {"0"} and set(anns["macs_m"]) == {"1"}
    assert set(anns["energy_mj"]) == {"0.005"}
    # SNN rows per simulated T: sops = 1e5·T → 0.1·T million ACs, macs 1e4 → 0.01 M, energy 1e-4·T mJ.
    for label in ("SNN_QCFS", "SNN_CS-QCFS"):
        for T in (1, 4):
            mine = row(frame, method=label, source="snnx", T=str(T))
            assert (mine["acs_m"], mine["macs_m"], mine["energy_mj"]) == (f"{0.1 * T:.4g}", "0.01", f"{1e-4 * T:.4g}")
    # The paper's rows first, each followed by snnx's; and the layout plots.
    assert list(frame["method"]) == ["ANN"] * 3 + ["SNN_QCFS"] * 3 + ["SNN_CS-QCFS"] * 3
    assert png_size(plot_table(result, tmp_path / "t7.png"))[0] > 500


def test_csqcfs_table6_mean_seconds_per_epoch_of_the_runs_ann(tmp_path):
    write_run(tmp_path, "q", accs={4: 75.0}, ann=78.0, dataset="cifar100", model="resnet50")
    write_run(tmp_path, "cs", accs={4: 77.0}, ann=78.5, dataset="cifar100", model="resnet50", act="csqcfs",
              convert="cos", config={"train.two_stage": True})
    cache = tmp_path / "cache" / "ann"
    for key, stage, seconds in (("kq", "train", [10.0, 12.0, 14.0]), ("kcs", "train", [100.0]),
                                ("kcs", "finetune", [11.0, 14.0])):
        (cache / key).mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"stage": stage, "epoch": range(1, len(seconds) + 1), "seconds": seconds}) \
            .to_csv(cache / key / f"{stage}.csv", index=False)
    result = load_table(conf_layout("csqcfs_table6"), tmp_path)
    frame = result.frame
    assert row(frame, method="QCFS", source="reported")["epoch time (s)"] == "110"
    assert row(frame, method="CS-QCFS", source="reported")["epoch time (s)"] == "111.81"
    assert row(frame, method="QCFS", source="snnx")["epoch time (s)"] == "12"  # (10 + 12 + 14) / 3
    # Two-stage: the epochs of the stage that trains CS-QCFS (finetune.csv), not stage 1's.
    assert row(frame, method="CS-QCFS", source="snnx")["epoch time (s)"] == "12.5"
    assert png_size(plot_table(result, tmp_path / "t6.png"))[0] > 500
    # No cached train.csv (the cache moved, or another paths.root): an empty cell, never 0.
    import shutil

    shutil.rmtree(cache / "kq")
    frame = load_table(conf_layout("csqcfs_table6"), tmp_path).frame
    assert frame[(frame["method"] == "QCFS") & (frame["source"] == "snnx")].empty


def test_ann_row_option_errors_name_the_key():
    with pytest.raises(ConfigError) as err:
        layout(rows=["dataset", "method"], methods=[{"label": "ANN", "snnx": {"act": "qcfs"}, "ann": "yes"}])
    assert err.value.key == "table.methods[0].ann"
    with pytest.raises(ConfigError) as err:
        layout(rows=["dataset", "method"], methods=[{"label": "ANN", "paper": {"method": "ANN"}, "ann": True}])
    assert err.value.key == "table.methods[0].ann"


def test_csqcfs_tables_6_and_7_place_every_reported_cell():
    from snnx.tables import build_table

    for name, table in (("csqcfs_table6", "Table 6"), ("csqcfs_table7", "Table 7")):
        lay = conf_layout(name)
        reported = load_paper("csqcfs", [table])
        assert len(reported) == {"Table 6": 2, "Table 7": 9}[table]
        result = build_table(lay, pd.DataFrame(), reported)
        assert sum(len(r.cells) for r in result.rows) == len(reported) and not result.notes


# -- plots you can read, columns that fit the value, rounded numbers --------------------------------------
def _msat_sweep(root: Path, anns=(95.0, 95.0, 96.0, 97.0)) -> list[float]:
    """Four MSAT settings of one act/convert pair (convert.alpha as a sweep writes it); returns the alphas."""
    alphas = [0.01, 0.030000000000000002, 0.1, 0.3]
    for i, (alpha, ann) in enumerate(zip(alphas, anns)):
        write_run(root, f"m{i}", accs={1: 40.0 + i, 4: 70.0 + i, 16: 88.0 + i}, ann=ann, convert="msat",
                  config={"convert.alpha": alpha})
    return alphas


def test_each_setting_has_its_own_colour_and_its_ann_line_shares_it(tmp_path):
    from matplotlib.colors import to_hex

    from snnx.tables.plot import draw_table

    anns = (95.0, 95.0, 96.0, 97.0)
    _msat_sweep(tmp_path, anns)
    result = load_table(layout(), tmp_path)
    assert list(result.frame["setting"]) == [f"convert.alpha={a}" for a in ("0.01", "0.03", "0.1", "0.3")]
    fig = draw_table(result)
    (ax,) = fig.axes
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() != "-"]
    # setting i was written with accuracy 40 + i at T=1 (the line's first point)
    colour_of = {int(line.get_ydata()[0]) - 40: to_hex(line.get_color()) for line in solid}
    assert sorted(colour_of) == [0, 1, 2, 3] and len(set(colour_of.values())) == 4
    ann_colours: dict[float, set] = {}
    for line in dashed:
        ann_colours.setdefault(float(line.get_ydata()[0]), set()).add(to_hex(line.get_color()))
    # Each ANN line in its setting's colour, at its setting's ANN; two settings sharing an ANN show both colours.
    assert ann_colours == {ann: {colour_of[i] for i in range(4) if anns[i] == ann} for ann in set(anns)}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "qcfs / msat [convert.alpha=0.03]" in legend and not any("0.0300000" in t for t in legend)
    assert fig._suptitle.get_text() == "test"


def test_a_paper_row_shares_the_colour_of_its_one_snnx_line():
    from snnx.tables.pivot import Row
    from snnx.tables.plot import _line_styles

    lay = layout(rows=["dataset", "model", "method"], methods=[{"label": "QCFS", "paper": {"method": "QCFS"},
                                                                 "snnx": {"act": "qcfs"}}])
    result = type("R", (), {"layout": lay})()
    rows = [Row({"method": "QCFS"}, "reported"), Row({"method": "QCFS"}, "snnx", setting="convert=cos"),
            Row({"method": "Other"}, "reported")]
    styles = _line_styles(rows, result)
    assert styles["QCFS"][0] == styles["QCFS [convert=cos]"][0] != styles["Other"][0]
    styles = _line_styles([*rows, Row({"method": "QCFS"}, "snnx", setting="convert=qcfs")], result)
    assert len({styles[k][0] for k in ("QCFS", "QCFS [convert=cos]", "QCFS [convert=qcfs]")}) == 3


def test_the_title_comes_from_table_name_unless_the_layout_has_its_own(tmp_path):
    summary = yaml.safe_load((REPO / "conf" / "table" / "summary.yaml").read_text())
    assert Layout.from_dict(summary).title == "snnx results"
    assert Layout.from_dict({**summary, "name": "msat_sweep"}).title == "msat_sweep"
    paper = yaml.safe_load((REPO / "conf" / "table" / "csqcfs_table1.yaml").read_text())
    assert Layout.from_dict({**paper, "name": "mine"}).title == paper["title"]
    write_run(tmp_path, "a", accs={1: 50.0, 4: 90.0}, ann=95.0)
    from snnx.tables.plot import draw_table

    result = load_table(Layout.from_dict({**summary, "name": "msat_sweep"}), tmp_path)
    assert result.title == "msat_sweep" and draw_table(result)._suptitle.get_text() == "msat_sweep"


def test_the_ann_column_holds_the_anns_value_of_the_tables_metric(tmp_path):
    from snnx.tables.pivot import format_number

    write_run(tmp_path, "a", accs={1: 50.0, 4: 90.0}, ann=95.0)  # ann_energy_mj 5e-3, ann_macs 1e6 (write_run)
    written = pd.read_csv(tmp_path / "runs" / "a" / "results.csv").iloc[0]
    expected = {"acc": format_number(written["ann_acc"], "ANN"),
                "conversion_loss": format_number(written["ann_acc"], "ANN"),
                "energy_mj": format_number(written["ann_energy_mj"], "energy_mj"),
                "macs": format_number(written["ann_macs"], "macs"),
                "spikes_per_neuron": None, "negative_spikes_per_neuron": None, "sops": None}
    for value, ann in expected.items():
        frame = load_table(layout(value=value), tmp_path).frame
        if ann is None:
            assert "ANN" not in frame.columns, value
        else:
            assert frame["ANN"].iloc[0] == ann, value
    assert expected["energy_mj"] == "0.005" and expected["macs"] == "1e+06"
    # The T columns keep the table's metric at each T: spikes_per_neuron = 0.1·T (write_run).
    assert load_table(layout(value="spikes_per_neuron"), tmp_path).frame["T=4"].iloc[0] == "0.4"


def test_a_paper_layout_for_energy_takes_no_ann_accuracy_from_the_paper(tmp_path):
    write_run(tmp_path, "q", accs={2: 90.0, 4: 93.0}, ann=95.0, dataset="cifar10", model="vgg16")
    acc = load_table(conf_layout("csqcfs_table1"), tmp_path)
    assert any(r.source == "reported" and "ANN" in r.cells for r in acc.rows)
    energy = load_table(conf_layout("csqcfs_table1", value="energy_mj"), tmp_path)
    assert not any(r.source == "reported" and "ANN" in r.cells for r in energy.rows)
    assert [r.cells["ANN"].text for r in energy.rows if r.source == "snnx"] == ["0.005"]


def test_settings_are_rounded_for_reading_unless_that_merges_two():
    from snnx.tables.layout import display
    from snnx.tables.pivot import _setting_texts

    assert [display(v) for v in (0.030000000000000002, 4.0, "0.1", 1e-5, float("inf"), "msat", None)] == \
        ["0.03", "4", "0.1", "1e-05", "inf", "msat", None]
    ids = [json.dumps({"convert.alpha": a, "seed": 0}) for a in (0.030000000000000002, 0.1)]
    assert sorted(_setting_texts(ids).values()) == ["convert.alpha=0.03", "convert.alpha=0.1"]
    close = [json.dumps({"convert.alpha": a}) for a in (0.03, 0.030000000000000002)]
    assert sorted(_setting_texts(close).values()) == ["convert.alpha=0.03", "convert.alpha=0.030000000000000002"]


def test_the_sweep_objective_is_rounded_as_the_tables_print_it():
    from omegaconf import OmegaConf

    from snnx.stages import objective_value
    from snnx.tables.layout import rounded

    frame = pd.DataFrame({"T": [4, 16], "acc": [37.39999999999999, 90.0], "energy_mj": [0.000123456789, 1.0],
                          "conversion_loss": [0.20000000000000284, 0.0]})
    cfg = lambda metric: OmegaConf.create({"objective": {"metric": metric, "T": 4}})  # noqa: E731
    assert objective_value(cfg("acc"), {"results": frame}) == 37.4
    assert objective_value(cfg("conversion_loss"), {"results": frame}) == 0.2
    assert objective_value(cfg("energy_mj"), {"results": frame}) == 0.000123457
    assert objective_value(cfg("ann_acc"), {"metrics": {"test_acc": 97.12000000000001}}) == 97.12
    assert objective_value(OmegaConf.create({"objective": {"metric": None, "T": None}}), {"results": frame}) is None
    assert math.isnan(rounded(float("nan"), "acc"))
