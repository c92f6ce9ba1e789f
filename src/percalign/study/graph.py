"""The study as a declared graph of steps, and the runner that orders, keys and records them.

A :class:`Step` declares its name, the steps and the settings it reads, what it writes, and
the function that runs it. Its key is derived from that declaration alone: every declared
setting's value (but those it declares ``unkeyed``: the device, ``[tasks]``), the keys of the
steps it reads, and ``extra`` inputs that are not settings (a model's weights hash, the
answers so far). A step sees only what it declared: :class:`Inputs` refuses any other step's
key or value and any other setting (:class:`UndeclaredInputError`), so a key cannot miss a
setting its step reads.

The :class:`Runner` orders the steps (each after the steps it reads), keys every instance of
a step (one per run folder for ``invert`` and ``judge``; one for the others), skips those the
ledger records with the same key and whose output exists, and records the rest as they
finish. Instances recorded under the previous key format are re-keyed once, when their old
key still matches (:mod:`percalign.study.legacy_keys`). Adding a step is one more
:class:`Step` in the list the runner gets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from percalign.study.ledger import KEY_FORMAT, Ledger, step_key
from percalign.study.spec import StudySpec, default_setting, read_setting, setting_paths

if TYPE_CHECKING:
    from percalign.execution.backends import Backend, TaskProgress

__all__ = [
    "Context",
    "Inputs",
    "Runner",
    "Step",
    "UndeclaredInputError",
    "keyed_settings",
    "order",
]


class UndeclaredInputError(AttributeError):
    """A step read a setting or a step it did not declare (a bug in the step, not in a spec)."""


def _covers(declared: str, path: str) -> bool:
    return path == declared or path.startswith(declared + ".")


@dataclass(frozen=True)
class Step:
    """One step of the study.

    Attributes:
        name: the step's name; an instance ``part`` of it is recorded as ``name:part``.
        reads: the steps whose keys, values and outputs it reads.
        settings: the spec sections (``"survey"``) or fields (``"study.seed"``,
            ``"models.name"``: that field of every entry) it reads.
        unkeyed: those of ``settings`` that cannot change what it writes (the device,
            ``[tasks]``): left out of its key.
        extra: what the key holds besides settings and the keys of the steps it reads, from
            the values of those steps or the folder (a model's weights hash, the answers).
        upstream: which keys of the steps it reads its key holds (default: the same instance
            of a step that has it, else every instance of each).
        narrow: the spec as instance ``part`` sees it, for its key (a run's own model and
            loss), so that one model's settings do not re-key another model's runs.
        output: the path an instance writes (it is done when this exists and its key is
            recorded).
        run: runs the instances given (the parts still to do); calls
            :meth:`Inputs.finished` for each as it is written, and returns the step's value
            for the steps that read it.
        parts: the step's instances ("" alone: one instance named like the step).
        enabled: whether the spec asks for the step at all.
        recorded: False for a step that is computed on every run and never recorded (loading
            the models): its value is what others read; it has no key.
        added: those of ``settings`` declared after studies were recorded with this key
            format, whose default does what the step did before: keyed only when set to
            another value, so a study recorded before keeps its key (and its answers).
    """

    name: str
    reads: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    unkeyed: tuple[str, ...] = ()
    extra: Callable[[Inputs, str], Sequence[Any]] = lambda _i, _p: ()
    upstream: Callable[[Inputs, str], Any] | None = None
    narrow: Callable[[StudySpec, str], StudySpec] | None = None
    output: Callable[[Inputs, str], Path] | None = None
    run: Callable[[Inputs, list[str]], Any] = lambda _i, _p: None
    parts: Callable[[Inputs], list[str]] = lambda _i: [""]
    enabled: Callable[[Inputs], bool] = lambda _i: True
    recorded: bool = True
    added: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind, paths in (("unkeyed", self.unkeyed), ("added", self.added)):
            for path in paths:
                if not any(_covers(d, path) for d in self.settings):
                    raise ValueError(
                        f"Step {self.name!r}: {kind} {path!r} is not a declared setting."
                    )

    def instance(self, part: str) -> str:
        return f"{self.name}:{part}" if part else self.name

    def is_keyed(self, path: str) -> bool:
        """Whether the setting ``path`` (a field) is part of this step's key."""
        return not any(_covers(u, path) for u in self.unkeyed)


def keyed_settings(step: Step, spec: StudySpec) -> dict[str, Any]:
    """The settings a step's key holds: every declared field but the unkeyed, by path."""
    keyed = {
        path: read_setting(spec, path)
        for path in setting_paths(step.settings)
        if step.is_keyed(path)
    }
    for path in setting_paths(step.added):
        if keyed.get(path) == default_setting(path):
            keyed.pop(path, None)
    return keyed


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
    """The spec as one step may see it: only the sections and fields it declared
    (``declared`` None: all of it)."""

    def __init__(self, spec: StudySpec, declared: Sequence[str] | None, step: str) -> None:
        sections: dict[str, set[str] | None] = {}
        for item in declared or ():
            section, _, name = item.partition(".")
            if not name:
                sections[section] = None
            elif sections.get(section, set()) is not None:
                sections.setdefault(section, set()).add(name)  # type: ignore[union-attr]
        super().__init__(spec, None if declared is None else set(sections), "", step)
        self._sections = sections

    def __getattr__(self, name: str) -> Any:
        value = super().__getattr__(name)
        fields = self._sections.get(name)
        if fields is None:
            return value
        if isinstance(value, tuple):  # [[models]]: the declared fields of every entry
            return tuple(_View(v, fields, f"{name}.", self._step) for v in value)
        return _View(value, fields, f"{name}.", self._step)

    def section(self, name: str) -> dict[str, Any]:
        """One declared section as plain data (see :meth:`StudySpec.section`)."""
        if self._allowed is not None and self._sections.get(name, set()) is not None:
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
    instances of the steps it declared; plus the :class:`Context`.

    ``spec`` is the spec it sees (default: the runner's), ``keys`` the keys it reads (default:
    the runner's), ``declared`` False to see every setting (old key functions only).
    """

    def __init__(
        self,
        runner: Runner,
        step: Step,
        spec: StudySpec | None = None,
        keys: Mapping[str, dict[str, str]] | None = None,
        declared: bool = True,
    ) -> None:
        self._runner, self._step = runner, step
        self._keys = runner.keys if keys is None else keys
        settings = step.settings if declared else None
        self.spec: StudySpec = SpecView(spec or runner.spec, settings, step.name)  # type: ignore[assignment]
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
        return self._keys.get(step, {}).get(part)

    def keys(self, step: str) -> dict[str, str]:
        """Every instance of a declared step, with its key (empty when it is not enabled)."""
        self._check(step)
        return dict(self._keys.get(step, {}))

    def own_key(self, part: str = "") -> str:
        """This step's key for instance ``part``."""
        return self._runner.keys[self._step.name][part]

    def every_key(self) -> list[tuple[str, str]]:
        """(instance, key) of every enabled instance of the declared steps, sorted."""
        found = []
        for name in self._step.reads:
            step = self._runner.by_name[name]
            found += [(step.instance(p), k) for p, k in self._keys.get(name, {}).items()]
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


#: an old key function: the parts of an instance's key, from Inputs that see every setting
OldKey = Callable[[Inputs, str], Sequence[Any]]


@dataclass
class Runner:
    """Runs a graph of steps on one study folder; :attr:`executed` lists what it ran.

    ``old_keys`` are the key functions of the previous key format, by step: an instance the
    ledger recorded under that format whose old key still matches is re-keyed (once, with a
    line in the log) instead of being run again. ``values`` stands in for the values of
    steps that are not recorded (the loaded models), for :meth:`plan`.
    """

    spec: StudySpec
    steps: Sequence[Step]
    context: Context
    executed: list[str] = field(default_factory=list)
    old_keys: Mapping[str, OldKey] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.context.folder)
        self.keys: dict[str, dict[str, str]] = {}
        self.previous: dict[str, dict[str, str]] = {}  # keys in the previous format
        self.by_name = {s.name: s for s in self.steps}
        self.rekeyed: list[str] = []

    def record(self, step: Step, part: str, seconds: float, **info: Any) -> None:
        name = step.instance(part)
        self.ledger.record(name, self.keys[step.name][part], seconds, **info)
        self.executed.append(name)

    def key(self, step: Step, part: str) -> str:
        """Instance ``part``'s key, derived from the step's declaration."""
        spec = step.narrow(self.spec, part) if step.narrow is not None else self.spec
        inputs = Inputs(self, step, spec)
        if step.upstream is not None:
            upstream = step.upstream(inputs, part)
        else:
            upstream = {}
            for name in step.reads:
                if not self.by_name[name].recorded:
                    continue
                keys = self.keys.get(name)
                upstream[name] = (
                    keys[part] if keys and part and part in keys else sorted((keys or {}).items())
                )
        settings = keyed_settings(step, spec)
        return step_key(step.name, KEY_FORMAT, settings, upstream, list(step.extra(inputs, part)))

    def _rekey(self, step: Step, parts: list[str]) -> None:
        """Give instances recorded under the previous format their new key if the old still
        matches (their outputs are what the new key describes)."""
        old = self.old_keys.get(step.name)
        if old is None or not self.ledger.has_old_format():
            return
        inputs = Inputs(self, step, keys=self.previous, declared=False)
        self.previous[step.name] = {p: step_key(*old(inputs, p)) for p in parts}
        for p in parts:
            name = step.instance(p)
            if self.ledger.old_format(name) and self.ledger.done(name, self.previous[step.name][p]):
                self.ledger.rekey(name, self.keys[step.name][p])
                self.rekeyed.append(name)
                self.context.log(
                    f"Step {name}: recorded by an earlier version; re-keyed, its output is kept"
                )

    def _walk(self, execute: bool) -> None:
        for step in order(self.steps):
            inputs = Inputs(self, step)
            if not step.enabled(inputs):
                continue
            parts = step.parts(inputs)
            if not step.recorded:
                if step.name not in self.values or execute:
                    self.values[step.name] = step.run(inputs, parts)
                continue
            self.keys[step.name] = {p: self.key(step, p) for p in parts}
            if not execute:
                continue
            self._rekey(step, parts)
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

    def run(self) -> None:
        """Run every enabled instance that is not done, in order."""
        self._walk(execute=True)

    def plan(self) -> dict[str, dict[str, str]]:
        """The key of every enabled instance, running nothing but the unrecorded steps that
        :attr:`values` does not stand in for."""
        self._walk(execute=False)
        return self.keys


def declared(step: Step) -> dict[str, Any]:
    """A step's declaration as data (for docs and tests)."""
    return {
        "name": step.name,
        "reads": list(step.reads),
        "settings": list(step.settings),
        "unkeyed": list(step.unkeyed),
        "recorded": step.recorded,
    }
