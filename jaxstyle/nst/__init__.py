"""Neural style transfer: VGG19 weights, losses, optimisers and the stylize driver."""
