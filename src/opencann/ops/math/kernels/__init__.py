"""Tile-language kernels of this family (loaded on demand, not by `import opencann.ops`)."""
