"""Weight converters from public checkpoints into jaxstyle params (see ARCHITECTURE.md).

Kept import-free: `vgg_weights` and the CLI import single converters, and none of them may pull in
torch (`.pth` files are read by our own safe reader, `torch_pth`).
"""
