"""The batched launcher composes a sweep's jobs once per shape of overrides: every job's config must
equal, key for key, the one Hydra composes from scratch, and a bad value must fail as in Hydra."""

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

from hydra_plugins.softq_lab_launcher.sweep_configs import ComposedOnce
from softq_lab.run.train import CONFIG_DIR

SWEEPS = [
    [[f"tau={t}", f"seed={s}"] for t in (0, 0.1, 1) for s in range(3)],
    [["+experiment=maxbias", f"seed={s}", f"double={d}"] for d in ("none", "twin") for s in (0, 7)],
    [[f"env={e}", "network=tabular", f"tau={t}"] for e in ("frozenlake", "cliffwalking")
     for t in (0, 0.5)],
    [[f"+optim.kwargs={{b1: {b}}}", "seed=1"] for b in (0.8, 0.9)],  # not plain: Hydra composes
    [["seed=1", "tau=0.1"], ["tau=0.2", "seed=1"], ["seed=2", "tau=0.3", "lr=0.01"]],
]


@pytest.fixture(scope="module")
def loader():
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        yield GlobalHydra.instance().config_loader()


def resolved_task(cfg):
    """The job's own config, interpolations resolved (hydra's needs a job number: left out)."""
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]),
                                  resolve=True)


def master(loader, overrides=()):
    return loader.load_configuration("config", list(overrides), run_mode=RunMode.MULTIRUN)


@pytest.mark.parametrize("jobs", SWEEPS, ids=range(len(SWEEPS)))
def test_every_job_config_equals_hydras_own_composition(loader, jobs):
    root = master(loader)
    fast = ComposedOnce(loader)
    for overrides in jobs:
        theirs = loader.load_sweep_config(root, list(overrides))
        ours = fast(root, overrides)
        assert OmegaConf.to_container(ours) == OmegaConf.to_container(theirs), overrides
        assert resolved_task(ours) == resolved_task(theirs)


def test_later_jobs_of_a_shape_are_not_composed_again(loader):
    root = master(loader)
    fast = ComposedOnce(loader)
    calls = []
    compose = fast._compose
    fast._compose = lambda m, o: calls.append(o) or compose(m, o)
    for s in range(20):
        fast(root, [f"seed={s}", "tau=0.1"])
    assert len(calls) == 1


def test_a_job_may_edit_its_config_without_touching_the_next(loader):
    root = master(loader)
    fast = ComposedOnce(loader)
    first = fast(root, ["seed=0"])
    first.seed = 99
    assert fast(root, ["seed=1"]).seed == 1 and fast(root, ["seed=0"]).seed == 0


@pytest.mark.parametrize("odd", ["seed=abc", "tau=[1,2]", "nonexistent_key=1", "~seed"])
def test_an_odd_override_gives_hydras_config_or_hydras_error(loader, odd):
    """Hydra only checks that a key exists (types are checked later, by `prepare`): an odd value
    composes as in Hydra, and an unknown key fails with Hydra's own message."""
    root = master(loader)
    fast = ComposedOnce(loader)
    fast(root, ["seed=0"])  # the shape `seed=*` is known: the odd value must still behave alike
    try:
        theirs = loader.load_sweep_config(root, [odd])
    except ConfigCompositionException as error:
        with pytest.raises(ConfigCompositionException) as ours:
            fast(root, [odd])
        assert str(ours.value) == str(error)
    else:
        assert OmegaConf.to_container(fast(root, [odd])) == OmegaConf.to_container(theirs)
