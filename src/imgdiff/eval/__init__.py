"""Evaluations: `imgdiff eval <name> ...` (today: localization)."""
