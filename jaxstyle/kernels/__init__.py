"""Backend fast paths for convolutions, chosen in one place (kernels.dispatch)."""
