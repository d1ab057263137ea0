"""The `generate` stage: image pairs from caption pairs (METHOD.md section 2)."""
