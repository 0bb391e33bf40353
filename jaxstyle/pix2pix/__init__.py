"""pix2pix: paired translation (presets, aligned data, synthetic pairs, step, trainer, scores)."""
