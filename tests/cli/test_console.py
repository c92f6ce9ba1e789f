"""Progress on any output: plain lines with elapsed time and ETA when not on a terminal."""

import io

from rich.console import Console

from percalign.cli import _console
from percalign.cli._console import Lines, step_log
from percalign.inversion import Progress


def _file_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=False), buffer


def test_lines_report_the_first_update_then_at_most_one_per_period_and_the_last(monkeypatch):
    console, buffer = _file_console()
    now = [100.0]
    monkeypatch.setattr(_console.time, "monotonic", lambda: now[0])
    lines = Lines("invert", console, every_s=30.0)
    for done, at in [(10, 101.0), (20, 120.0), (30, 131.5), (40, 140.0), (100, 150.0)]:
        now[0] = at
        lines.update(done, 100, "steps", "batch 1/2")
    printed = buffer.getvalue().splitlines()
    assert printed == [
        "invert: 10/100 steps, batch 1/2; 0:01 elapsed, ETA 0:09",
        "invert: 30/100 steps, batch 1/2; 0:31 elapsed, ETA 1:13",
        "invert: 100/100 steps, batch 1/2; 0:50 elapsed",
    ]


def test_the_inversion_progress_writes_lines_when_not_on_a_terminal(monkeypatch):
    console, buffer = _file_console()
    monkeypatch.setattr(_console, "err", console)
    with _console.inversion_progress("invert") as report:
        report(Progress(steps_done=5, steps_total=20, batch=0, batches=2, mean_distance=0.25))
        report(Progress(steps_done=20, steps_total=20, batch=1, batches=2, mean_distance=0.125))
    printed = buffer.getvalue().splitlines()
    assert len(printed) == 2
    assert printed[0].startswith("invert: 5/20 steps, batch 1/2, dist 0.2500; 0:00 elapsed, ETA")
    assert printed[1].startswith("invert: 20/20 steps, batch 2/2, dist 0.1250; 0:00 elapsed")


def test_the_step_log_stamps_each_line_with_the_time_since_it_began(monkeypatch):
    console, buffer = _file_console()
    now = [10.0]
    monkeypatch.setattr(_console.time, "monotonic", lambda: now[0])
    log = step_log(console)
    now[0] = 93.0
    log("Step judge: running [0.0, 56.1]")
    assert buffer.getvalue() == "[1:23] Step judge: running [0.0, 56.1]\n"


def test_every_step_logs_its_start_and_its_end_with_its_seconds(tmp_path):
    from percalign.study.graph import Context, Runner, Step
    from percalign.study.spec import parse_spec

    console, buffer = _file_console()

    def run(inputs, todo):
        inputs.run_each(todo, lambda part: (inputs.folder / f"{part}.txt").write_text("x"))

    step = Step(
        "s",
        settings=("judges.k",),
        output=lambda i, p: i.folder / f"{p}.txt",
        run=run,
        parts=lambda _i: ["1", "2"],
    )
    spec = parse_spec({"models": [{"name": "tiny-cnn"}]})
    Runner(spec, [step], Context(tmp_path, log=step_log(console))).run()
    printed = buffer.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in printed] == [
        "Step s:1: running",
        "Step s:1: done (0 s)",
        "Step s:2: running",
        "Step s:2: done (0 s)",
    ]
    assert all(line.startswith("[0:00] ") for line in printed)
