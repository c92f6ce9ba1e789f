#!/usr/bin/env bash
# The digits zoo and its alignment picture (issues 3 and 4): trains the paper's variants of a
# 5-conv CNN on the embedded digits, inverts 24 test digits per model (regularizer-free loss,
# super-noise and natural-image seeds), and judges the IRIs.
# Usage: benchmarks/digits_zoo.sh [OUTDIR]   (set PERCALIGN_HOME to keep the zoo elsewhere)
set -euo pipefail
out=${1:-zoo-eval}
p=${PERCALIGN:-.venv/bin/percalign}
mkdir -p "$out"
train() { # name, args...
  local name=$1; shift
  [ -f "${PERCALIGN_HOME:-$HOME/.cache/percalign}/zoo/$name/meta.json" ] && return 0
  /usr/bin/time -f "$name: %e s wall" $p train --dataset digits --arch small-cnn --name "$name" "$@"
}
train digits-cnn-std --recipe standard --epochs 10
train digits-cnn-std-noaug --recipe standard --no-augment --epochs 10
train digits-cnn-adv --recipe adv-l2 --eps 1.0 --epochs 10
train digits-cnn-adv2 --recipe adv-l2 --eps 2.0 --epochs 10
train digits-cnn-trades --recipe trades --eps 1.0 --beta 6 --epochs 10
train digits-cnn-simclr --recipe simclr --epochs 30
train digits-cnn-ssa --recipe supervised-simclr-aug --epochs 10
for m in digits-cnn-std digits-cnn-std-noaug digits-cnn-adv digits-cnn-adv2 digits-cnn-trades \
         digits-cnn-simclr digits-cnn-ssa; do
  $p invert --model "$m" --images digits --split test --n-images 24 --seeds super-noise,image \
     --optimizer adam --steps 500 --out "$out/$m" --overwrite
  $p judge "$out/$m" --judges pixel,ssim,ms-ssim,model:digits-cnn-adv2 > "$out/$m/judge.txt"
done
