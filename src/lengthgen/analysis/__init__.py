"""Analyses of trained models: the dependency-sparsity probe (probe.py), its synthetic-task and
text front ends, and an offline pretrained reference model (pretrained.py)."""
