"""ViSAGe model core: checkpoints, code patterns, transformer, generation."""
