"""Command-line overrides that Hydra would answer with a traceback, answered in one line instead.

Hydra reads `env=3` as the integer 3 and fails deep in its defaults list (`Config group override must
be a string`); a config group's option is a name. A user's config folder that does not exist is a
multi-line error (`--config-dir`) or only a warning (`hydra.searchpath`). Both checks run before Hydra
composes anything.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override

from softq_lab.run.config import ConfigError


def options(config_dir: Path, group: str) -> list[str]:
    """The option names of a config group of ours (`env` -> acrobot, cartpole, ...)."""
    return sorted(p.stem for p in (config_dir / group).glob("*.yaml"))


def _parse(arg: str) -> Override | None:
    """`arg` as a Hydra override, or None when it is not one Hydra's grammar accepts (not ours to
    judge: Hydra reports its own grammar errors)."""
    try:
        (override,) = OverridesParser.create().parse_overrides([arg])
    except Exception:
        return None
    return override


def _choices(override: Override) -> list[object]:
    value = override.value()
    return list(value.list) if isinstance(value, ChoiceSweep) else [value]


def check_groups(args: list[str], config_dir: Path) -> None:
    """Raise ConfigError for a config group override whose value is not an option name (a number,
    a boolean, a range), e.g. `env=3`; what is not a group override is left to Hydra."""
    groups = {p.name for p in config_dir.iterdir() if p.is_dir() and p.name != "hydra"}
    for arg in args:
        override = None if arg.startswith("-") or "=" not in arg else _parse(arg)
        if override is None:
            continue
        key = override.key_or_group
        if key not in groups and "/" not in key:
            continue
        for choice in _choices(override):
            if choice is None or isinstance(choice, str | list):
                continue
            if key in groups:
                allowed = f"one of {', '.join(options(config_dir, key))} (conf/{key}/)"
            else:
                allowed = "the name of one of its options"
            raise ConfigError(f"{key}={choice!r}: must be {allowed}")


CONFIG_DIR_FLAGS = ("--config-dir", "-cd")  # Hydra's flag for a user's config folder, and its short form


def _searchpath_folders(arg: str) -> list[str]:
    """The `file://` folders of a `hydra.searchpath=[...]` override (none for any other argument)."""
    override = _parse(arg)
    if override is None or override.key_or_group != "hydra.searchpath":
        return []
    value = override.value()
    entries = value if isinstance(value, list) else [value]
    return [e.removeprefix("file://") for e in entries if isinstance(e, str) and e.startswith("file://")]


def user_config_dirs(args: list[str]) -> list[tuple[str, str]]:
    """(key, folder) for each user config folder named on the command line: `--config-dir X`,
    `--config-dir=X`, `-cd X`, `-cd=X`, and the `file://` entries of `hydra.searchpath=[...]`."""
    found = []
    for i, arg in enumerate(args):
        flag, _, folder = arg.partition("=")
        if arg in CONFIG_DIR_FLAGS and i + 1 < len(args):
            found.append((arg, args[i + 1]))
        elif flag in CONFIG_DIR_FLAGS:
            found.append((flag, folder))
        elif not arg.startswith("-") and "searchpath" in flag:
            found += [("hydra.searchpath", f) for f in _searchpath_folders(arg)]
    return found


def check_config_dirs(args: list[str]) -> None:
    """Raise ConfigError for a user config folder that is not a folder, e.g. `--config-dir myconf`
    run from the wrong place."""
    for key, folder in user_config_dirs(args):
        if not Path(folder).is_dir():
            raise ConfigError(f"{key}={folder}: must be an existing folder (of config groups)")
