"""The learner's pure functions: operators, n-step targets, replay, networks, policy, the learner."""
