"""Experiments: a grid of run configs (`grid`), Huang et al.'s protocol (`protocol`), executors
that run points on this machine or a Ray cluster (`sweep`), and the mode `lengthgen run` picks
(`runner`)."""
