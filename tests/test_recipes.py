"""The recipe tables (conf/experiment/recipes/*.csv) against the presets they describe.

Each row says: preset P composes key K to value V, and where that value comes from (the paper's
section / equation / table, or "ours: <reason>" where the paper is silent). Composition only: no
data is read, nothing is trained.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from snnx.config import config_dir
from snnx.composition import register_configs

RECIPES = config_dir() / "experiment" / "recipes"
PAPERS = ("denggu", "csqcfs", "msat", "allint")
PRESETS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml") if not p.stem.startswith("embedded_"))
# Every paper preset states where each of these comes from, whether or not the preset itself sets it
# (the dataset keys where its dataset declares them: MNIST has no dataset.flip).
CORE = ("dataset.name", "dataset.augment", "dataset.flip", "dataset.autoaugment", "dataset.cutout", "model.name",
        "model.batch_norm", "model.dropout.conv", "model.dropout.fc", "model.init", "act.name", "convert.name", "train.optimizer", "train.lr",
        "train.epochs", "train.batch_size", "train.weight_decay", "train.schedule", "sim.T")
# A citation names the paper's place: a section, equation, table, figure, appendix or algorithm.
CITATION = re.compile(r"(§|Eq\.|Eqs\.|Table|Tab\.|Fig\.|App\.|Sec\.|Alg\.|Algorithm|Appendix)")


def _rows() -> list[dict]:
    rows = []
    for paper in PAPERS:
        path = RECIPES / f"{paper}.csv"
        with path.open(newline="") as f:
            for i, row in enumerate(csv.DictReader(f), start=2):
                rows.append({**row, "where": f"{path.name}:{i}", "paper": paper})
    return rows


ROWS = _rows()


@pytest.fixture(scope="module")
def composed():
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        yield {name: compose(config_name="config", overrides=[f"experiment={name}"]) for name in PRESETS}


def _equal(got, want) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want or got == want and type(got) is type(want)
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want, rel_tol=1e-12, abs_tol=0.0)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_equal(g, w) for g, w in zip(got, want))
    return got == want


def _leaves(tree, prefix=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1]


def test_every_paper_preset_has_a_recipe():
    assert {row["preset"] for row in ROWS} == set(PRESETS)
    for paper in PAPERS:
        names = {row["preset"] for row in ROWS if row["paper"] == paper}
        assert names and all(name.startswith(paper + "_") for name in names), paper


def test_rows_are_unique_and_sourced():
    seen = set()
    for row in ROWS:
        assert (row["preset"], row["key"]) not in seen, f"{row['where']}: {row['key']} listed twice"
        seen.add((row["preset"], row["key"]))
        source = row["source"].strip()
        assert source, f"{row['where']}: no source"
        if source.startswith("ours"):
            assert re.match(r"ours: \S", source), f"{row['where']}: 'ours: <reason>'"
        else:
            assert CITATION.search(source), f"{row['where']}: cite the paper's section/equation/table: {source!r}"
        assert "ALGORITHMS" not in source and "shared/" not in source, f"{row['where']}: cite the paper"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['preset']}:{r['key']}")
def test_row_matches_the_composed_preset(row, composed):
    cfg = composed[row["preset"]]
    got = OmegaConf.select(cfg, row["key"], default="<absent>")
    assert got != "<absent>", f"{row['where']}: {row['preset']} has no key {row['key']}"
    got = OmegaConf.to_container(got, resolve=True) if OmegaConf.is_config(got) else got
    want = yaml.safe_load(row["value"])
    assert _equal(got, want), f"{row['where']}: {row['preset']} composes {row['key']} to {got!r}, the table says {want!r}"


@pytest.mark.parametrize("name", PRESETS)
def test_recipe_lists_every_key_the_preset_sets_and_the_core(name, composed):
    from snnx.data.registry import DATASETS

    data = yaml.safe_load((config_dir() / "experiment" / f"{name}.yaml").read_text())
    listed = {row["key"] for row in ROWS if row["preset"] == name}
    choices = {f"{entry_key.split('/')[-1]}.name" for entry in data.pop("defaults", []) for entry_key in entry}
    declared = DATASETS.get(composed[name].dataset.name).keys
    core = {k for k in CORE if not k.startswith("dataset.") or k.split(".", 1)[1] in declared}
    needed = set(_leaves(data)) | choices | core
    assert needed <= listed, f"{name}: no recipe row for {sorted(needed - listed)}"


def test_project_text_cites_papers_not_internal_notes():
    """Comments and docs point users at the papers, never at notes that only exist beside a checkout."""
    repo = Path(__file__).resolve().parent.parent
    offenders = []
    for path in [*repo.glob("snnx/**/*.py"), *repo.glob("conf/**/*.yaml"), *repo.glob("conf/**/*.md"),
                 *repo.glob("scripts/*.py"), repo / "README.md", repo / "Makefile"]:
        text = path.read_text()
        for word in ("ALGORITHMS.md", "../shared", "shared/papers", "DESIGN.md"):
            if word in text:
                offenders.append(f"{path.relative_to(repo)}: {word}")
    assert not offenders, offenders
