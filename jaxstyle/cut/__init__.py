"""CUT and FastCUT (Park et al. 2020): contrastive unpaired translation on CycleGAN's trainer."""
