"""jaxstyle: CycleGAN and neural style transfer in JAX/Flax (Generative Deep Learning, ch. 5)."""

__version__ = '0.1.0'
