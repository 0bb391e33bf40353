"""CycleGAN: data, step, trainer, evaluation and translation."""
