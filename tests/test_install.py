"""softq-lab installed from its wheel, not used from the clone: the README's commands work from any
folder, on the configs shipped inside the package (`softq_lab.conf`, the clone's conf/)."""

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers import FAST, softq_train

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# What a wheel is built from: the clone without its venv, run outputs and build leftovers.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "outputs", "multirun", "wandb", "results",
    ".*_cache",
)  # fmt: skip


def _run(*cmd: str | Path, cwd: Path | None = None) -> str:
    """Run a set-up command; its stdout, or a failure that shows its stderr."""
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{cmd}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with softq-lab installed from a wheel built from a copy of the clone.

    The dependencies are not downloaded again: the venv's site-packages gets a .pth line naming this
    test venv's site-packages. A directory named that way is only appended to sys.path, its own .pth
    files are not run, so the editable install's finder (which maps softq_lab to the clone) stays out.
    """
    root = tmp_path_factory.mktemp("install")
    shutil.copytree(REPO, root / "source", ignore=NOT_SOURCE)
    pip = (sys.executable, "-m", "pip")
    _run(*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", root / "dist", root / "source")  # fmt: skip
    (wheel,) = (root / "dist").glob("softq_lab-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    _run(*pip, "--python", venv / "bin" / "python", "install", "--quiet", "--no-deps", "--no-index",
         wheel)  # fmt: skip
    site = _run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    deps = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    (Path(site.strip()) / "test_venv_dependencies.pth").write_text("\n".join(deps) + "\n")
    return venv


def _installed_train(venv: Path, *overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return softq_train(*overrides, cwd=cwd, prog=(str(venv / "bin" / "softq-train"),))


def _finished(run_dir: Path) -> bool:
    """The run dir holds a whole run that finished."""
    files = ("config.yaml", "metrics.jsonl", "status.json")
    if not all((run_dir / name).is_file() for name in files):
        return False
    return json.loads((run_dir / "status.json").read_text())["status"] == "finished"


def _shipped_files(root: Path, package: Path) -> set[str]:
    """The modules and configs under `root`, as paths inside the installed `package`."""
    return {
        str(package / p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts
    }


def test_the_installed_softq_lab_is_the_wheels_and_holds_every_module_and_config(venv: Path, tmp_path):
    where = _run(venv / "bin" / "python", "-c",
                 "import softq_lab, softq_lab.conf, hydra_plugins.softq_lab_launcher as h; "
                 "print(softq_lab.__file__); print(softq_lab.conf.CONFIG_DIR); print(h.__file__)",
                 cwd=tmp_path)  # fmt: skip
    paths = [Path(line) for line in where.split()]
    assert all(p.is_relative_to(venv) for p in paths), paths
    site = paths[0].parents[1]
    assert _shipped_files(site / "softq_lab", Path("softq_lab")) == (
        _shipped_files(REPO / "softq_lab", Path("softq_lab"))
        | _shipped_files(REPO / "conf", Path("softq_lab/conf"))
    )
    launcher = site / "hydra_plugins" / "softq_lab_launcher"
    assert _shipped_files(launcher, Path()) == _shipped_files(
        REPO / "hydra_plugins" / "softq_lab_launcher", Path()
    )


def test_an_installed_softq_train_runs_from_a_folder_outside_the_clone(venv: Path, tmp_path):
    done = _installed_train(venv, *FAST, "hydra.run.dir=run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _finished(tmp_path / "run")


def test_an_installed_softq_train_prints_hydras_help_with_the_shipped_config_groups(
    venv: Path, tmp_path
):
    done = _installed_train(venv, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("softq-train is powered by Hydra.")
    assert "env: acrobot, cartpole, cliffwalking, frozenlake" in done.stdout
    assert "network: custom, tabular, type1, type2" in done.stdout
    assert "tau: 0.01" in done.stdout


def test_an_installed_softq_train_sweeps(venv: Path, tmp_path):
    done = _installed_train(venv, "-m", "seed=0,1", *FAST, "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _finished(tmp_path / "sweep" / "0")
    assert _finished(tmp_path / "sweep" / "1")
