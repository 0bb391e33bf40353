"""bf16 compute with float32 params: the real train step runs, stays finite and keeps fp32 params."""

import jax
import numpy as np
import pytest
from helpers import tiny_train_config

from jaxstyle import checkpoint
from jaxstyle.cyclegan import train as train_cyclegan

pytestmark = pytest.mark.slow  # a bf16 train step compile (~50 s)


def test_bf16_compute_keeps_fp32_params(tmp_path):
  cfg = tiny_train_config(**{'model.dtype': 'bfloat16'})
  last = train_cyclegan.train(cfg, str(tmp_path))
  assert all(np.isfinite(v) for k, v in last.items() if k.startswith('train/loss'))
  _, params = checkpoint.load_run(str(tmp_path))
  dtypes = {np.asarray(x).dtype for x in jax.tree.leaves(params)}
  assert dtypes == {np.dtype('float32')}
