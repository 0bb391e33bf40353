#!/usr/bin/env bash
# The GPU measurements of issue #6, as one script for a lent CUDA machine (docs/performance.md, GPU table).
#   bash launch/gpu_bench.sh            # on the GPU machine; results in $OUT (default runs/gpu_bench)
#   SMOKE=1 bash launch/gpu_bench.sh    # tiny sizes on any machine, jaxstyle side only (checks the script)
# jaxstyle runs through `python -m jaxstyle.tools.bench`; the PyTorch peers in jaxstyle/tools/peers run unchanged
# on the same card through launch/gpu_peer.py.
set -u
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
OUT=${OUT:-runs/gpu_bench}; mkdir -p "$OUT"
PY=${PY:-python3}
if [ -d .whl ]; then  # packages the accelerator image lacks (ml_collections), carried as wheels
  $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
$PY -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"

bench() {  # bench NAME ARGS...: one JSON line into results.jsonl, log into log.txt
  local name=$1; shift
  echo "== $name: jaxstyle bench $*"
  timeout "${LIMIT:-120}" $PY -m jaxstyle.tools.bench "$@" >"$OUT/$name.out" 2>>"$OUT/log.txt"
  tail -1 "$OUT/$name.out" | tee -a "$OUT/results.jsonl"
}
peer() {  # peer NAME ARGS...: the PyTorch peer on the same card
  local name=$1; shift
  [ -n "${SMOKE:-}" ] && return
  echo "== $name: gpu_peer.py $*"
  timeout "${LIMIT:-120}" $PY launch/gpu_peer.py "$@" 2>>"$OUT/log.txt" | tail -2 | tee -a "$OUT/peers.txt"
}

if [ -n "${SMOKE:-}" ]; then
  bench resnet_b1_fp32 cyclegan --arch resnet256 --size 32 --steps 1 --warmup 1 --no-peak
  bench nst_fp32 nst-run --size 32 --outer 1 --no-peak
  bench nst_bf16 nst-run --size 32 --outer 1 --dtype bfloat16 --no-peak
  exit 0
fi
# In priority order (a lease can end mid-script; results.jsonl keeps what finished).
# NST 512^2: 25 book segments of 20 L-BFGS iterations = 500 iterations
bench nst512_fp32 nst-run --size 512 --outer 25
peer peer_nst512_fp32 nst 512 25
# CycleGAN ResNet-9 256 px (reference generator + 70x70 PatchGAN), images/s
bench resnet_b1_fp32 cyclegan --arch resnet256 --steps 20
bench resnet_b1_bf16 cyclegan --arch resnet256 --steps 20 --dtype bfloat16
peer peer_resnet_b1_fp32 cyclegan resnet256 20 1
peer peer_resnet_b1_bf16 --amp bf16 cyclegan resnet256 20 1
bench unet_b1_fp32 cyclegan --arch unet128 --steps 20
peer peer_unet_b1_fp32 cyclegan unet128 20 1
bench nst512_bf16 nst-run --size 512 --outer 25 --dtype bfloat16
# larger batch
bench resnet_b8_bf16 cyclegan --arch resnet256 --batch 8 --steps 10 --dtype bfloat16
peer peer_resnet_b8_bf16 --amp bf16 cyclegan resnet256 10 8
echo "== done"; cat "$OUT/results.jsonl"
