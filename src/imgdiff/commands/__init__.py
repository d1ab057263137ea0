"""Commands of the `imgdiff` CLI that are tools around the pipeline rather than runs of it: they sit
above the run core (`recipe`, `models`, `tiny`) and nothing below imports them."""
