"""The study as a declared graph of steps, and the runner that orders, keys and records them.

A :class:`Step` declares its name, the steps and the settings it reads, how its key is made
(from those inputs only), what it writes, and the function that runs it. The
:class:`Runner` orders the steps (each after the steps it reads), keys every instance of a
step (one per run folder for ``invert`` and ``judge``; one for the others), skips those the
ledger records with the same key and whose output exists, and records the rest as they
finish. A step sees only what it declared: :class:`Inputs` refuses any other step's key or
value and any other setting (:class:`UndeclaredInputError`), so a key cannot miss an input.
Adding a step is one more :class:`Step` in the list the runner gets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from percalign.study.ledger import Ledger, step_key
from percalign.study.spec import StudySpec

if TYPE_CHECKING:
    from percalign.study.backends import Backend, TaskProgress

__all__ = ["Context", "Inputs", "Runner", "Step", "UndeclaredInputError", "order"]


class UndeclaredInputError(AttributeError):
    """A step read a setting or a step it did not declare (a bug in the step, not in a spec)."""


@dataclass(frozen=True)
class Step:
    """One step of the study.

    Attributes:
        name: the step's name; an instance ``part`` of it is recorded as ``name:part``.
        reads: the steps whose keys, values and outputs it reads.
        settings: the spec sections (``"survey"``) or fields (``"study.seed"``) it reads.
        key: the parts of an instance's key, from :class:`Inputs` and the instance's part.
        output: the path an instance writes (it is done when this exists and its key is
            recorded).
        run: runs the instances given (the parts still to do); calls
            :meth:`Inputs.finished` for each as it is written, and returns the step's value
            for the steps that read it.
        parts: the step's instances ("" alone: one instance named like the step).
        enabled: whether the spec asks for the step at all.
        recorded: False for a step that is computed on every run and never recorded (loading
            the models): its value is what others read.
    """

    name: str
    reads: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    key: Callable[[Inputs, str], Sequence[Any]] = lambda _i, _p: ()
    output: Callable[[Inputs, str], Path] | None = None
    run: Callable[[Inputs, list[str]], Any] = lambda _i, _p: None
    parts: Callable[[Inputs], list[str]] = lambda _i: [""]
    enabled: Callable[[Inputs], bool] = lambda _i: True
    recorded: bool = True

    def instance(self, part: str) -> str:
        return f"{self.name}:{part}" if part else self.name


class _View:
    """Attribute access to the declared part of a spec section (or of the spec)."""

    def __init__(self, value: Any, allowed: set[str] | None, where: str, step: str) -> None:
        self._value, self._allowed, self._where, self._step = value, allowed, where, step

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._allowed is not None and name not in self._allowed:
            raise UndeclaredInputError(
                f"Step {self._step!r} read {self._where}{name}, which it does not declare."
            )
        return getattr(self._value, name)


class SpecView(_View):
    """The spec as one step may see it: only the sections and fields it declared."""

    def __init__(self, spec: StudySpec, declared: Sequence[str], step: str) -> None:
        sections: dict[str, set[str] | None] = {}
        for item in declared:
            section, _, name = item.partition(".")
            if not name:
                sections[section] = None
            elif sections.get(section, set()) is not None:
                sections.setdefault(section, set()).add(name)  # type: ignore[union-attr]
        super().__init__(spec, set(sections), "", step)
        self._sections = sections

    def __getattr__(self, name: str) -> Any:
        value = super().__getattr__(name)
        fields = self._sections.get(name)
        return value if fields is None else _View(value, fields, f"{name}.", self._step)

    def section(self, name: str) -> dict[str, Any]:
        """One declared section as plain data (see :meth:`StudySpec.section`)."""
        if self._sections.get(name, set()) is not None:
            raise UndeclaredInputError(f"Step {self._step!r} does not declare section {name!r}.")
        spec: StudySpec = self._value
        return spec.section(name)


@dataclass
class Context:
    """What every step may use besides its inputs: the folder, where to log, the backend."""

    folder: Path
    log: Callable[[str], None] = print
    progress: Callable[[Any], None] | None = None
    backend: Backend | None = None
    on_task: Callable[[TaskProgress], None] | None = None


class Inputs:
    """What one step reads: its declared settings (``spec``), and the keys, values and
    instances of the steps it declared; plus the :class:`Context`."""

    def __init__(self, runner: Runner, step: Step) -> None:
        self._runner, self._step = runner, step
        self.spec: StudySpec = SpecView(runner.spec, step.settings, step.name)  # type: ignore[assignment]
        self.context = runner.context
        self.folder = runner.context.folder
        self.log = runner.context.log

    def _check(self, name: str) -> None:
        if name not in self._step.reads:
            raise UndeclaredInputError(
                f"Step {self._step.name!r} read step {name!r}, which it does not declare."
            )

    def key(self, step: str, part: str = "") -> str | None:
        """The key of instance ``part`` of a declared step (None when it is not enabled)."""
        self._check(step)
        return self._runner.keys.get(step, {}).get(part)

    def keys(self, step: str) -> dict[str, str]:
        """Every instance of a declared step, with its key (empty when it is not enabled)."""
        self._check(step)
        return dict(self._runner.keys.get(step, {}))

    def own_key(self, part: str = "") -> str:
        """This step's key for instance ``part``."""
        return self._runner.keys[self._step.name][part]

    def every_key(self) -> list[tuple[str, str]]:
        """(instance, key) of every enabled instance of the declared steps, sorted."""
        found = []
        for name in self._step.reads:
            step = self._runner.by_name[name]
            found += [(step.instance(p), k) for p, k in self._runner.keys.get(name, {}).items()]
        return sorted(found)

    def value(self, step: str) -> Any:
        """What a declared step's run function returned."""
        self._check(step)
        return self._runner.values.get(step)

    def finished(self, part: str, seconds: float, **info: Any) -> None:
        """Record instance ``part`` of this step as written (call it once the output is)."""
        self._runner.record(self._step, part, seconds, **info)

    def run_each(self, todo: list[str], work: Callable[[str], Any]) -> None:
        """Run ``work(part)`` for each instance to do, timing and recording each."""
        for part in todo:
            name = self._step.instance(part)
            self.log(f"Step {name}: running")
            started = time.perf_counter()
            work(part)
            seconds = time.perf_counter() - started
            self.finished(part, seconds)
            self.log(f"Step {name}: done ({seconds:.0f} s)")


def order(steps: Sequence[Step]) -> list[Step]:
    """The steps ordered so that each comes after every step it reads (stable otherwise)."""
    by_name = {s.name: s for s in steps}
    for s in steps:
        for name in s.reads:
            if name not in by_name:
                raise ValueError(f"Step {s.name!r} reads {name!r}, which is not a step.")
    done: list[Step] = []
    seen: set[str] = set()

    def visit(step: Step, path: tuple[str, ...]) -> None:
        if step.name in seen:
            return
        if step.name in path:
            raise ValueError(f"Steps read each other in a cycle: {' -> '.join(path)}.")
        for name in step.reads:
            visit(by_name[name], (*path, step.name))
        seen.add(step.name)
        done.append(step)

    for s in steps:
        visit(s, ())
    return done


@dataclass
class Runner:
    """Runs a graph of steps on one study folder; :attr:`executed` lists what it ran."""

    spec: StudySpec
    steps: Sequence[Step]
    context: Context
    executed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.context.folder)
        self.keys: dict[str, dict[str, str]] = {}
        self.values: dict[str, Any] = {}
        self.by_name = {s.name: s for s in self.steps}

    def record(self, step: Step, part: str, seconds: float, **info: Any) -> None:
        name = step.instance(part)
        self.ledger.record(name, self.keys[step.name][part], seconds, **info)
        self.executed.append(name)

    def run(self) -> None:
        for step in order(self.steps):
            inputs = Inputs(self, step)
            if not step.enabled(inputs):
                continue
            parts = step.parts(inputs)
            if not step.recorded:
                self.values[step.name] = step.run(inputs, parts)
                continue
            self.keys[step.name] = {p: step_key(*step.key(inputs, p)) for p in parts}
            assert step.output is not None, f"step {step.name!r} declares no output"
            todo = [
                p
                for p in parts
                if not (
                    self.ledger.done(step.instance(p), self.keys[step.name][p])
                    and step.output(inputs, p).exists()
                )
            ]
            self.values[step.name] = step.run(inputs, todo) if todo else None


def declared(step: Step) -> dict[str, Any]:
    """A step's declaration as data (for docs and tests)."""
    return {
        "name": step.name,
        "reads": list(step.reads),
        "settings": list(step.settings),
        "recorded": step.recorded,
    }
