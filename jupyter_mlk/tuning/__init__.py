"""Hyperparameter sweeps: a Katib-shaped spec, Optuna locally, Katib on a cluster."""
