#!/usr/bin/env bash
# The engine on one accelerator (an H200 or any CUDA GPU), in under 5 minutes:
# ResNet-50 (224 px, penultimate, batches 32/128) and ViT-B/16 (224 px, CLS), each in fp32,
# bf16 and bf16 + torch.compile: engine image-steps/s, the ratio to a bare forward+backward
# of the truncated model in the same precision, peak memory; then valid IRIs per GPU-hour with
# the default preset on a random-weight ResNet-50.
#   benchmarks/gpu.sh                    # on a CUDA machine
#   benchmarks/gpu.sh --smoke            # tiny models on the CPU, about a minute (the tests run it)
#   benchmarks/gpu.sh --json gpu.json    # also keep the table
# Extra options go to benchmarks/bench_gpu.py (--help). PYTHON overrides the interpreter.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
exec "$python" "$here/bench_gpu.py" "$@"
