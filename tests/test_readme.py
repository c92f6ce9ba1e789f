"""README.md, true line by line: its shell blocks run as written, in order, in a fresh folder.

Each fenced block without a language (or marked ``sh``/``bash``) is one bash script, run with
``set -e`` in one temporary folder shared by all blocks, with a fresh ``PERCALIGN_HOME``,
offline, and this checkout's ``percalign`` first on the PATH. A command line whose comment
says ``[not run by the README check: REASON]`` is left out (the reason must be given). A
``percalign survey serve`` line runs in the background until its block ends, once its port
answers, so that the next lines can talk to it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = re.compile(r"\[not run by the README check:([^\]]*)\]")
SERVE = re.compile(r"^percalign survey serve .*--port (\d+)")


def shell_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, body) of every shell block of a Markdown text."""
    blocks, body, start, fence = [], [], 0, None
    for number, line in enumerate(text.splitlines(), 1):
        if fence is None and line.startswith("```"):
            fence, start, body = line[3:].strip(), number + 1, []
        elif fence is not None and line.startswith("```"):
            if fence in ("", "sh", "bash"):
                blocks.append((start, "\n".join(body)))
            fence = None
        elif fence is not None:
            body.append(line)
    return blocks


def script(body: str) -> tuple[str, list[str]]:
    """The bash script a block runs, and the lines it leaves out (with their reasons)."""
    lines, skipped, servers = [], [], []
    for line in body.splitlines():
        marked = SKIP.search(line)
        if marked:
            if not marked.group(1).strip():
                raise AssertionError(f"a README command is left out without a reason: {line}")
            skipped.append(line)
            continue
        served = SERVE.match(line)
        if served:
            port = served.group(1)
            servers.append(port)
            lines += [f"{line} &", f"server_{port}=$!", f"wait_for_port {port}"]
            continue
        lines.append(line)
    stop = [f"kill $server_{port}; wait $server_{port} || true" for port in servers]
    prelude = (
        "set -eo pipefail\n"
        "wait_for_port() { for _ in $(seq 600); do "
        "python -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:$1/')\" "
        "2>/dev/null && return 0; sleep 0.5; done; return 1; }\n"
    )
    return prelude + "\n".join(lines + stop) + "\n", skipped


def test_blocks_and_markers_are_read_as_written():
    text = "intro\n```\nmake x   # [not run by the README check: slow]\necho a \\\n  b\n```\n"
    text += "```python\nprint(1)\n```\n```\npercalign survey serve S --port 8123\necho c\n```\n"
    blocks = shell_blocks(text)
    assert [n for n, _ in blocks] == [3, 11]
    first, skipped = script(blocks[0][1])
    assert skipped == ["make x   # [not run by the README check: slow]"]
    assert "echo a \\\n  b" in first and "make x" not in first
    served, _ = script(blocks[1][1])
    assert "percalign survey serve S --port 8123 &" in served
    assert served.index("wait_for_port 8123\n") < served.index("echo c") < served.index("kill")
    with pytest.raises(AssertionError, match="without a reason"):
        script("make y  # [not run by the README check: ]")


def test_every_left_out_command_gives_its_reason():
    skipped = [line for _, body in shell_blocks(README.read_text()) for line in script(body)[1]]
    assert skipped, "the README's long and networked commands carry the marker"
    assert all(SKIP.search(line).group(1).strip() for line in skipped)


@pytest.mark.slow
@pytest.mark.readme  # minutes of training: `make readme` and .ci/run, not `make test`
@pytest.mark.timeout(3600)  # training three digit models included; minutes on an idle machine
def test_the_readme_commands_run_in_order(tmp_path):
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT / "src"),
        "PERCALIGN_HOME": str(tmp_path / "home"),
        "PERCALIGN_OFFLINE": "1",
        "PERCALIGN_ADMIN_TOKEN": "readme-check",
    }
    work = tmp_path / "work"
    work.mkdir()
    for line, body in shell_blocks(README.read_text()):
        started = time.perf_counter()
        text, _ = script(body)
        done = subprocess.run(
            ["bash", "-c", text],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        print(f"README.md block at line {line}: {time.perf_counter() - started:.0f} s")
        assert done.returncode == 0, (
            f"README.md block at line {line} failed (exit {done.returncode}, "
            f"{time.perf_counter() - started:.0f} s):\n{body}\n--- output ---\n"
            + (done.stdout[-3000:] + done.stderr[-3000:])
        )
