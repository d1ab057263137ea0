"""Evaluations and predictions: `imgdiff eval captions|mmvp|localization|describe` and `imgdiff predict`."""
