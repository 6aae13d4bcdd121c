"""The wheel as a user installs it: every subpackage and the configs inside, working outside the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "snnx").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "snnx.conf" in listed


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel installed (--no-deps), its dependencies read from this venv's site-packages
    (a plain path entry: the editable install's finder in there is not run)."""
    tmp = tmp_path_factory.mktemp("wheel")
    run = lambda *cmd, **kw: subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)  # noqa: E731
    # Built from a copy of the tracked sources: a build/ folder left in the checkout would carry stale modules.
    source = tmp / "source"
    for name in ("snnx", "conf"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    built = run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp),
                str(source))
    assert built.returncode == 0, built.stderr
    venv = tmp / "venv"
    made = run(sys.executable, "-m", "venv", str(venv))
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(tmp.glob("snnx-*.whl"))
    done = run(str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel))
    assert done.returncode == 0, done.stderr
    work = tmp / "elsewhere"
    work.mkdir()
    return {"python": python, "snnx": venv / "bin" / "snnx", "cwd": work, "site": site, "run": run}


API_SCRIPT = """
import sys
import torch, torch.nn as nn, torch.nn.functional as F
import snnx.api as api

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(64, 3)
    def forward(self, x):
        return self.fc(F.avg_pool2d(F.relu(self.conv(x)), 2).flatten(1))

images, labels = torch.rand(16, 1, 8, 8), torch.randint(0, 3, (16,))
snn = api.convert(Net().eval(), method="maxnorm", calibration=images)
result = api.simulate(snn, (images, labels), [2, 8])
api.save_snn(snn, "snn.pt")
again = api.simulate(api.load_snn("snn.pt", model=Net()), (images, labels), [2, 8])
assert again.accuracy == result.accuracy and len(result.to_pandas()) == 2
outside = [m.__file__ for name, m in sys.modules.items() if name.startswith("snnx") and getattr(m, "__file__", None)
           and not m.__file__.startswith(sys.argv[1])]
assert not outside, outside
print("ok")
"""


@pytest.mark.slow  # long end to end (make test-full)
def test_the_installed_wheel_runs_outside_the_repository(installed):
    run, cwd = installed["run"], installed["cwd"]
    where = run(str(installed["python"]), "-c", "import snnx, snnx.api, snnx.kernels, snnx.config as c; "
                "print(snnx.__file__); print(c.config_dir())", cwd=cwd)
    assert where.returncode == 0, where.stderr
    module, conf = where.stdout.split()
    assert module.startswith(installed["site"]) and not module.startswith(str(ROOT)), module
    assert conf.startswith(installed["site"]) and Path(conf, "config.yaml").is_file(), conf
    version = run(str(installed["snnx"]), "--version", cwd=cwd)
    assert version.returncode == 0 and version.stdout.startswith("snnx 0."), version.stdout + version.stderr
    helped = run(str(installed["snnx"]), "--help", cwd=cwd)
    assert helped.returncode == 0 and "(none yet)" not in helped.stdout and "mnist5k" in helped.stdout
    ran = run(str(installed["snnx"]), "run", "dataset=digits", "model.width=0.25", "train=smoke", "sim.T=[1,4]",
              f"paths.root={cwd / 'out'}", cwd=cwd)
    assert ran.returncode == 0, ran.stderr[-2000:]
    (results,) = list((cwd / "out").rglob("results.csv"))
    tabled = run(str(installed["snnx"]), "table", f"paths.root={cwd / 'out'}", cwd=cwd)
    assert tabled.returncode == 0, tabled.stderr[-2000:]
    assert (cwd / "out" / "tables" / "summary.csv").is_file()
    again = run(str(installed["snnx"]), "simulate", f"snn={results.parent / 'snn.pt'}", "sim.T=[1,4]",
                f"paths.root={cwd / 'out'}", f"hydra.run.dir={cwd / 'again'}", cwd=cwd)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (cwd / "again" / "results.csv").read_text().count("\n") == results.read_text().count("\n")
    # The API on one's own model, every snnx module imported from the installed package.
    script = cwd / "use_api.py"
    script.write_text(API_SCRIPT)
    used = run(str(installed["python"]), str(script), installed["site"], cwd=cwd)
    assert used.returncode == 0, used.stderr[-2000:]
    assert used.stdout.split()[-1] == "ok", used.stdout
    # Exactly the package's own modules went in: none left over from an earlier build.
    wheel = next(installed["cwd"].parent.glob("snnx-*.whl"))
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    assert shipped == {str(p.relative_to(ROOT)) for p in (ROOT / "snnx").rglob("*.py")}
