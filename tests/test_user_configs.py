"""A user's own config folder composes with the shipped configs: the README's example, as written."""

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from helpers import FAST, softq_train

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_example() -> tuple[str, list[list[str]]]:
    """The README's *Your own configs* example: the option file it writes, and its softq-train
    command lines (arguments only)."""
    section = README.read_text(encoding="utf-8").split("### Your own configs", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    option = re.search(r"<<'EOF'\n(.*?\n)EOF\n", block, re.DOTALL).group(1)
    commands = [shlex.split(line, comments=True)[1:] for line in block.splitlines()
                if line.startswith("softq-train ")]  # fmt: skip
    return option, commands


@pytest.fixture
def myconf(tmp_path: Path) -> list[list[str]]:
    """The README's `myconf/env/mycart.yaml`, written in tmp_path; returns the README's commands."""
    option, commands = _readme_example()
    (tmp_path / "myconf" / "env").mkdir(parents=True)
    (tmp_path / "myconf" / "env" / "mycart.yaml").write_text(option, encoding="utf-8")
    return commands


def test_the_readme_example_has_the_config_dir_and_the_searchpath_forms(myconf):
    assert [args[0] for args in myconf] == [
        "--config-dir", "hydra.searchpath=[file://myconf]", "--config-dir",
    ]  # fmt: skip


@pytest.mark.parametrize("which", [0, 1, 2], ids=["config-dir", "searchpath", "cfg-job"])
def test_a_users_env_option_composes_with_the_shipped_defaults(myconf, tmp_path, which):
    args = myconf[which]
    if "--cfg" not in args:
        args = [*args, "--cfg", "job"]  # print what would run, instead of a 50k-step run
    done = softq_train(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    composed = yaml.safe_load(done.stdout)
    assert composed["env"]["id"] == "CartPole-v1"
    assert composed["env"]["max_episode_steps"] == 200  # the user's option
    assert composed["gamma"] == 0.99  # the user's option overrides config.yaml's default
    assert composed["network"]["hidden_sizes"] == [128, 128]  # the shipped network=type2
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_a_run_on_a_users_env_option_records_it(myconf, tmp_path):
    done = softq_train(*myconf[0], *FAST, "hydra.run.dir=run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["env"]["max_episode_steps"] == 200
    assert config["gamma"] == 0.99
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "finished"


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["--config-dir", "nodir"], "--config-dir"),
        (["-cd=nodir"], "-cd"),
        (["hydra.searchpath=[file://nodir]"], "hydra.searchpath"),
    ],
)
def test_a_user_config_folder_that_does_not_exist_is_one_line_and_exit_2(tmp_path, args, key):
    done = softq_train(*args, "env=mycart", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"softq-train: error: {key}=nodir: must be an existing folder (of config groups)"
    ]
    assert list(tmp_path.iterdir()) == []  # nothing written
