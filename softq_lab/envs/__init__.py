"""Custom gymnasium environments; importing this package registers them.

- ``MaxBias-v0``: Sutton & Barto's maximization-bias MDP (`softq_lab.envs.maxbias.MaxBiasEnv`),
  e.g. ``gymnasium.make("MaxBias-v0", n_b_actions=10)``.
"""

from gymnasium.envs.registration import register, registry

from softq_lab.envs.maxbias import MaxBiasEnv

__all__ = ["MaxBiasEnv"]

if "MaxBias-v0" not in registry:
    register(id="MaxBias-v0", entry_point="softq_lab.envs.maxbias:MaxBiasEnv")
