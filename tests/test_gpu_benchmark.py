"""benchmarks/gpu.sh --smoke: the accelerator benchmark's code path, on tiny models and the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.sh"


@pytest.mark.slow
def test_gpu_sh_smoke_prints_the_table_and_the_throughput_line(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("# percalign engine on cpu")
    assert "overhead" in lines[1] and "peak GiB" in lines[1]
    result = json.loads(out.read_text())
    assert [r["mode"] for r in result["rows"]] == ["fp32", "bf16", "bf16+compile"]
    for row in result["rows"]:
        assert row["engine_image_steps_per_s"] > 0 and row["bare_image_steps_per_s"] > 0
        assert row["overhead"] > 0 and row["peak_gib"] is None  # no peak memory on the CPU
    line = result["valid_per_hour"]
    assert line["iris"] == 32 and 0 <= line["valid"] <= 32  # 16 photos x (noise, image)
    assert any(s.startswith("valid IRIs per GPU-hour: ") for s in lines)


def test_gpu_sh_refuses_a_missing_gpu_in_one_line(monkeypatch, capsys):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import bench_gpu
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from percalign import _device
    from percalign.errors import ConfigError

    monkeypatch.setattr(_device, "cuda_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available here"):
        bench_gpu.main([])
    with pytest.raises(SystemExit):
        bench_gpu.main(["--smoke", "--modes", "fp16"])
    assert "unknown mode(s) ['fp16']" in capsys.readouterr().err
