"""The `describe` stage: difference captions for the boxes of a pair (METHOD.md section 4)."""
