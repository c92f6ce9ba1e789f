"""The settings reference of ``docs/study.md``, generated from the settings dataclasses.

``percalign study docs`` prints it; ``percalign study docs --write docs/study.md`` puts it
between the markers of that page. A test fails when the page and the dataclasses differ, so
a default or a help text is changed in one place: the dataclass field.
"""

from __future__ import annotations

from pathlib import Path

from percalign._settings import reference
from percalign.errors import ConfigError
from percalign.inversion.config import InversionConfig
from percalign.study.sections import STUDY_SETS, Inversion
from percalign.study.spec import SECTIONS

__all__ = ["BEGIN", "END", "reference_text", "write_reference"]

BEGIN = (
    "<!-- settings reference: generated from the settings dataclasses by "
    "`percalign study docs --write docs/study.md`; edit their help, not this -->"
)
END = "<!-- end of the settings reference -->"

#: each section's heading (after its name), in the order of the page
NOTES = {
    "study": "",
    "models": " (one table per model; at least one)",
    "images": "",
    "inversion": (
        " (the study's own fields, then every `InversionConfig` field but `loss` and `seed`, "
        "which the study sets per run; also the options of `percalign invert`)"
    ),
    "judges": " (`judges.JudgeSettings`, also the options of `percalign judge`)",
    "survey": " (also the options of `percalign survey build`)",
    "bots": (
        " (simulated participants, labelled as simulated everywhere; also the options of "
        "`percalign survey bots`)"
    ),
    "exclusions": (
        " (declare them before collecting data; `scoring.Exclusions`, also the options of "
        "`percalign score`)"
    ),
    "scoring": "",
    "trust": (
        " (the paper's RQ4; `trust.TrustSettings`, also the options of `percalign trust`; the "
        "study sets its images, layer, bootstrap and seed: `[images] source`, the first of "
        "`[inversion] layers`, `[scoring] n_boot`, `[study] seed`; fake-ReLU and channels-last "
        "come from `[inversion]`)"
    ),
    "tasks": " (how the work is cut into tasks, and what each asks of Ray; in no step's key)",
}


def reference_text() -> str:
    """The generated reference: one heading per section, one bullet per field."""
    parts = []
    for name, cls in SECTIONS.items():
        title = f"[[{name}]]" if name == "models" else f"[{name}]"
        lines = [f"## `{title}`{NOTES[name]}", ""]
        if cls is Inversion:
            lines += reference(Inversion, name, exclude=("options",))
            lines += reference(
                InversionConfig,
                name,
                exclude=STUDY_SETS,
                defaults={"batch_size": Inversion.BATCH_SIZE},
            )
        else:
            lines += reference(cls, name, exclude=getattr(cls, "FROM_STUDY", ()))
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def write_reference(path: Path) -> bool:
    """Put the reference between the markers of ``path``; return whether it changed."""
    text = Path(path).read_text()
    if BEGIN not in text or END not in text:
        raise ConfigError(f"{path} has no settings reference markers ({BEGIN!r} ... {END!r}).")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n\n{reference_text()}\n{END}{tail}"
    if new != text:
        Path(path).write_text(new)
    return new != text
