#!/usr/bin/env bash
# Runs a jaxstyle module on every TPU VM worker (big_vision's run_tpu.sh pattern).
#   bash launch/run_tpu.sh                          # bootstrap only: create the venv, install .[tpu]
#   bash launch/run_tpu.sh jaxstyle.main --config configs/x.py --workdir gs://bucket/run
# JAXSTYLE_DISTRIBUTED=1 makes parallel.maybe_init_distributed() call jax.distributed.initialize(),
# which must not run on single-host CPU/GPU machines, hence this wrapper sets it and nothing else does.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${JAXSTYLE_VENV:-$HOME/jaxstyle_venv}"

if [ ! -d "$VENV" ]; then
  command -v apt-get >/dev/null && { sudo apt-get update -q && sudo apt-get install -y -q python3-venv; }
  python3 -m venv "$VENV"
  . "$VENV/bin/activate"
  pip install -q -U pip
  pip install -q -e '.[tpu]'
else
  . "$VENV/bin/activate"
fi

if [ $# -ne 0 ]; then
  JAXSTYLE_DISTRIBUTED=1 python3 -m "$@"
fi
