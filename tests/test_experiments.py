"""Paper presets (conf/experiment/) and the `make table-*` targets that sweep them.

Fast: composition and validation only (no data is read, nothing is trained).
Every preset composes, validates without looking for dataset files, and sets
only keys the schema has, each to a value that differs from what its group
choices give anyway. Every `make table-*` target expands (`make -n`); every
value of every key its sweeps sweep composes and validates (one key varied at
a time); each of its `snnx table` calls composes into a valid layout.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from snnx.config import config_dir
from snnx.composition import register_configs
from snnx.data.registry import DATASETS
from snnx.tables import Layout
from snnx.app import explicit_keys
from snnx.validate import validate

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
# One preset per paper-table block (issue 6); the embedded ones run the same methods on mnist5k / digits.
EXPECTED = {
    "csqcfs_cifar10_vgg16", "csqcfs_cifar10_resnet18", "csqcfs_cifar10_resnet20", "csqcfs_cifar100_vgg16",
    "csqcfs_cifar100_resnet20", "csqcfs_cifar10_resnet50", "csqcfs_cifar10_resnet101", "csqcfs_cifar100_resnet50",
    "csqcfs_cifar100_resnet101", "denggu_cifar10_cifarnet", "denggu_cifar10_vgg16", "denggu_cifar10_resnet20",
    "denggu_cifar100_vgg16", "denggu_cifar100_resnet20", "denggu_imagenet_vgg16", "msat_cifar10_vgg16", "msat_cifar10_resnet20",
    "msat_cifar100_vgg16", "msat_cifar100_resnet20", "allint_mnist_lenet", "allint_cifar10_vgg11",
    "allint_cifar100_vgg11", "allint_imagenet_mobilenet", "embedded_csqcfs", "embedded_csqcfs_resnet20", "embedded_denggu",
    "embedded_denggu_digits", "embedded_msat", "embedded_msat_resnet20", "embedded_allint", "embedded_allint_vgg",
}
EMBEDDED_DATASETS = set(DATASETS.where(lambda entry: entry.trait("embedded", False)))
# Keys a preset may restate at their group default, and why.
RESTATED = {
    # The CS-QCFS sweeps swap act to qcfs / sqcfs / cqcfs (origin and ablation rows), whose defaults differ.
    "act.L": "csqcfs presets", "act.init_threshold": "csqcfs presets",
}
PAPERS = ("csqcfs", "denggu", "msat", "allint")
TARGETS = [f"table-{p}" for p in PAPERS] + [f"table-{p}-embedded" for p in PAPERS] + ["table-denggu-imagenet"]


# -- composing many configs in one Hydra context (compose() re-initialises Hydra on every call) --------
@pytest.fixture(scope="module")
def composer():
    from hydra import compose, initialize_config_dir

    register_configs()
    cache: dict[tuple, object] = {}
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        def run(stage: str, overrides: list[str]):
            key = (stage, *overrides)
            if key not in cache:
                cache[key] = compose(config_name="config", overrides=[f"stage={stage}", *overrides])
            return cache[key].copy()
        yield run


def _leaves(tree, prefix=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], tree


def _preset(name: str) -> tuple[list[str], dict]:
    """(the group choices its defaults list makes, its own values)."""
    data = yaml.safe_load((config_dir() / "experiment" / f"{name}.yaml").read_text())
    choices = []
    for entry in data.pop("defaults", []):
        (key, option), = entry.items()
        choices.append(f"{key.split('/')[-1]}={option}")
    return choices, data


def test_every_paper_block_has_a_preset():
    assert EXPECTED <= set(EXPERIMENTS), sorted(EXPECTED - set(EXPERIMENTS))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_preset_composes_and_validates(name, composer):
    text = (config_dir() / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_"), "a preset overrides the whole config"
    cfg = composer("run", [f"experiment={name}"])
    validate(cfg, check_paths=False, note=None)  # every semantic check except the dataset files' presence
    if name.startswith("embedded_"):
        assert cfg.dataset.name in EMBEDDED_DATASETS
    else:
        assert cfg.dataset.name not in EMBEDDED_DATASETS
        assert cfg.paths.root == "outputs" and cfg.seed == 0  # a preset changes the experiment, not where it goes


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_preset_sets_only_existing_keys_that_differ(name, composer):
    choices, values = _preset(name)
    base = composer("run", choices)
    with_preset = composer("run", [f"experiment={name}"])
    assert values, "a preset that changes no value is its group choices alone"
    for key, value in _leaves(values):
        assert OmegaConf.select(base, key, default="<absent>") != "<absent>", f"{name}: no key {key}"
        got = OmegaConf.select(with_preset, key)
        got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
        assert got == value, f"{name}: {key} composes to {got!r}, not {value!r}"
        default = OmegaConf.select(base, key)
        default = OmegaConf.to_container(default) if OmegaConf.is_config(default) else default
        if default == value:
            assert key in RESTATED and name.startswith(("csqcfs", "embedded_csqcfs")), \
                f"{name}: {key}={value!r} is already the default of {' '.join(choices)}"


# -- the Makefile targets --------------------------------------------------------------------
def _split_sweep(value: str) -> list[str]:
    """Hydra's simple sweep: comma-separated values, commas inside [...] or quotes not splitting."""
    parts, depth, quote, current = [], 0, None, ""
    for ch in value:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    return [*parts, current]


def _jobs(axes: list[list[str]]) -> list[tuple[str, ...]]:
    """Every value of every swept key at least once: the first job, then one key varied at a time.

    (The launcher composes every combination itself before starting; this keeps the test fast.)
    """
    first = tuple(values[0] for values in axes)
    jobs = [first]
    for i, values in enumerate(axes):
        jobs += [first[:i] + (value,) + first[i + 1:] for value in values[1:]]
    return jobs


def _expand_for(line: str) -> list[str]:
    """`for n in 1 2; do CMD; done` (a table loop of the Makefile) → the commands it runs."""
    m = re.match(r"^for (\w+) in ([^;]+); do (.*?)(?: \|\| exit 1)?; done$", line)
    if not m:
        return [line]
    var, values, body = m.groups()
    return [body.replace(f"${{{var}}}", v).replace(f"${var}", v) for v in values.split()]


def _commands(target: str) -> list[list[str]]:
    done = subprocess.run(["make", "-n", "-o", ".venv/.installed", target], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = []
    for line in done.stdout.splitlines():
        for command in _expand_for(line.strip()):
            words = shlex.split(command)
            if words and words[0].endswith("/snnx"):
                out.append(words[1:])
    return out


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", TARGETS)
def test_make_target_expands_and_every_job_composes(target, composer):
    commands = _commands(target)
    sweeps = [c for c in commands if c[:2] == ["run", "-m"]]
    tables = [c for c in commands if c[0] == "table"]
    assert sweeps and tables, f"{target} runs no sweep or makes no table"
    embedded = target.endswith("-embedded")
    sweep_dirs = []
    for command in sweeps:
        overrides = [w for w in command[2:] if not w.startswith("hydra")]
        sweep_dirs += [w.split("=", 1)[1] for w in command[2:] if w.startswith("hydra.sweep.dir=")]
        assert any(w.startswith("hydra/launcher=") for w in command), "the sweep uses the configured launcher"
        axes = [[f"{o.split('=', 1)[0]}={v}" for v in _split_sweep(o.split("=", 1)[1])] for o in overrides]
        for job in _jobs(axes):
            cfg = composer("run", list(job))
            # As the CLI does: a preset's key for a group option the job replaces is dropped, the job's own kept.
            validate(cfg, check_paths=False, note=None, explicit=explicit_keys(list(job)))
            assert (cfg.dataset.name in EMBEDDED_DATASETS) == embedded, (target, job)
    names = []
    for command in tables:
        cfg = composer("table", command[1:])
        layout = Layout.from_dict(OmegaConf.to_container(cfg.table, resolve=True))
        names.append(layout.name)
        assert layout.embedded == embedded
        if embedded:
            assert layout.name.endswith("_embedded"), "embedded tables must not overwrite the full-scale ones"
            assert cfg.table.sweep_dir and all(d.startswith(cfg.table.sweep_dir + "/") for d in sweep_dirs), \
                "an embedded table reads exactly its own target's sweeps"
    assert len(names) == len(set(names)), "two tables of one target write the same file"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_tables_embedded_runs_all_four():
    done = subprocess.run(["make", "-n", "-o", ".venv/.installed", "tables-embedded"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for paper in PAPERS:
        assert f"sweeps/embedded/{paper}" in done.stdout
