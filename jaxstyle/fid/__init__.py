"""FID and KID: the scores CycleGAN follow-ups compare runs by, computed as pytorch-fid / torch-fidelity do."""
