"""The learner's pure functions: operators, n-step targets, replay, networks, policy, the learner."""

from softq_lab.core import threefry

threefry.use_unrolled_on_cpu()  # same bits as JAX's default, far fewer CPU kernels per draw
