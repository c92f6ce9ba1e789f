"""The study as a declared graph: order, keys from declared inputs only, one declaration per
step, and no step reading what it did not declare."""

from __future__ import annotations

import json

import pytest

from percalign.study.graph import Context, Runner, Step, UndeclaredInputError, order
from percalign.study.ledger import LEDGER
from percalign.study.spec import parse_spec
from percalign.study.steps import STEPS

SPEC = parse_spec({"models": [{"name": "tiny-cnn"}], "judges": {"names": ["pixel"]}})


def _write(name: str):
    def run(inputs, todo):
        def work(part):
            (inputs.folder / f"{name}{part}.txt").write_text(str(inputs.spec.judges.k))

        inputs.run_each(todo, work)
        return name

    return run


def _steps(**extra) -> list[Step]:
    a = Step(
        "a",
        settings=("judges.k",),
        output=lambda i, _p: i.folder / "a.txt",
        run=_write("a"),
    )
    b = Step(
        "b",
        reads=("a",),
        settings=("judges.k",),
        output=lambda i, p: i.folder / f"b{p}.txt",
        run=_write("b"),
        parts=lambda _i: ["1", "2"],
        **extra,
    )
    return [b, a]  # declared out of order on purpose


def test_steps_run_after_what_they_read_and_are_recorded_once(tmp_path):
    runner = Runner(SPEC, _steps(), Context(tmp_path, log=lambda _m: None))
    runner.run()
    assert runner.executed == ["a", "b:1", "b:2"]
    ledger = json.loads((tmp_path / LEDGER).read_text())["steps"]
    assert set(ledger) == {"a", "b:1", "b:2"}
    again = Runner(SPEC, _steps(), Context(tmp_path, log=lambda _m: None))
    again.run()
    assert again.executed == []
    (tmp_path / "b2.txt").unlink()  # an output gone: only its instance runs again
    again = Runner(SPEC, _steps(), Context(tmp_path, log=lambda _m: None))
    again.run()
    assert again.executed == ["b:2"]


def test_a_changed_setting_reruns_the_steps_that_declare_it(tmp_path):
    Runner(SPEC, _steps(), Context(tmp_path, log=lambda _m: None)).run()
    other = parse_spec({"models": [{"name": "tiny-cnn"}], "judges": {"names": ["pixel"], "k": 3}})
    runner = Runner(other, _steps(), Context(tmp_path, log=lambda _m: None))
    runner.run()
    assert runner.executed == ["a", "b:1", "b:2"]  # b reads a's key, which changed
    other = parse_spec({"models": [{"name": "tiny-cnn"}], "judges": {"names": ["ssim"], "k": 3}})
    runner = Runner(other, _steps(), Context(tmp_path, log=lambda _m: None))
    runner.run()
    assert runner.executed == []  # names: read by no step here


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            Step("x", extra=lambda i, _p: (i.spec.judges.k,), output=lambda i, _p: i.folder),
            "read judges",
        ),
        (
            Step(
                "x",
                settings=("judges.k",),
                extra=lambda i, _p: (i.spec.judges.names,),
                output=lambda i, _p: i.folder,
            ),
            "read judges.names",
        ),
        (
            Step("x", extra=lambda i, _p: (i.key("a"),), output=lambda i, _p: i.folder),
            "read step 'a'",
        ),
        (
            Step(
                "x", extra=lambda i, _p: (i.spec.section("judges"),), output=lambda i, _p: i.folder
            ),
            "does not declare section 'judges'",
        ),
    ],
)
def test_a_step_cannot_read_what_it_did_not_declare(tmp_path, step, message):
    runner = Runner(SPEC, [*_steps(), step], Context(tmp_path, log=lambda _m: None))
    with pytest.raises(UndeclaredInputError, match=message):
        runner.run()


def test_cycles_and_unknown_steps_are_refused():
    with pytest.raises(ValueError, match="cycle"):
        order([Step("a", reads=("b",)), Step("b", reads=("a",))])
    with pytest.raises(ValueError, match="not a step"):
        order([Step("a", reads=("c",))])


def test_the_study_steps_are_in_the_documented_order():
    names = [s.name for s in order(STEPS)]
    assert names == [
        "train",
        "models",
        "invert",
        "judge",
        "survey",
        "bots",
        "score",
        "trust",
        "report",
    ]
    for step in STEPS:  # every recorded step says what it writes
        assert step.output is not None or not step.recorded
