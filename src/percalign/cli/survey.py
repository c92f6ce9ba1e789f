"""``percalign survey build|serve|bots|export``: study folders, the web service, bots."""

from __future__ import annotations

import argparse
from pathlib import Path

from percalign._settings import add_options, options_from
from percalign.cli._console import err, out
from percalign.cli.options import add_output, add_overwrite, add_seed
from percalign.errors import ConfigError
from percalign.judges.bots import BotSettings
from percalign.scoring.exclusions import Exclusions
from percalign.scoring.stopping import Stopping
from percalign.study.spec import Survey
from percalign.survey.build import build_survey, describe, unset_placeholders
from percalign.survey.limits import ServeSettings
from percalign.survey.requirements import POINTERS, Requirements
from percalign.survey.settings import SurveyDesign


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("survey", help="build human surveys from inversion runs")
    cmds = p.add_subparsers(metavar="ACTION", required=True)
    b = cmds.add_parser(
        "build",
        help="make a study folder: stimuli, plan, database",
        description="Turn inversion run folders into a study: content-addressed "
        "stimuli, the trial plan, and the database answers go to.",
    )
    b.add_argument("study", type=Path, help="study folder to create")
    b.add_argument(
        "--runs", type=Path, nargs="+", required=True, help="percalign invert output folders"
    )
    # the plan's settings (the [survey] section has them too)
    add_options(b, SurveyDesign)
    add_seed(b, help="seed of the plan's random choices")
    add_options(b, Survey, only=("practice",))
    add_options(b, Exclusions, only=("min_catch_accuracy", "max_side_share", "min_side_trials"))
    # a sequential survey: what it must decide, its budget and looks ([scoring] has them too)
    add_options(b.add_argument_group("sequential survey (stops when decided)"), Stopping)
    b.add_argument(
        "--texts",
        type=Path,
        default=None,
        help="TOML file with consent, instructions and debrief texts",
    )
    b.add_argument(
        "--require-viewport",
        default=None,
        metavar="WxH",
        help="the least browser window a participant needs, in CSS px (say 800x600)",
    )
    b.add_argument(
        "--require-pointer",
        choices=POINTERS,
        default=Requirements.pointer,
        help=f"the pointer a participant needs (default: {Requirements.pointer})",
    )
    b.add_argument(
        "--require-browser",
        default=None,
        metavar="LIST",
        help="accepted browsers, NAME or NAME>=VERSION, comma-separated "
        "(chrome, edge, firefox, safari)",
    )
    add_options(b, Survey, only=("database",))
    add_overwrite(b, help="replace an existing study folder (its answers too)")
    b.set_defaults(run=_build)

    c = cmds.add_parser(
        "copy",
        help="a fresh copy of a survey, without its answers (for people)",
        description="Build a new study folder from the same runs, design and texts as an "
        "existing survey (say, the one a study's simulated participants answered), with none "
        "of its answers.",
    )
    c.add_argument("source", type=Path, help="the survey folder to copy (STUDY/survey)")
    c.add_argument("study", type=Path, help="the study folder to create")
    c.add_argument("--texts", type=Path, default=None, help="TOML file with the texts to replace")
    add_options(c, Survey, only=("database",))
    add_overwrite(c, help="replace an existing study folder (its answers too)")
    c.set_defaults(run=_copy)

    v = cmds.add_parser("serve", help="serve the study to participants (uvicorn)")
    v.add_argument("study", type=Path)
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--workers", type=int, default=1)
    v.add_argument(
        "--completion-code", default=None, help="Prolific completion code for finished participants"
    )
    v.add_argument(
        "--failed-code",
        default=None,
        help="Prolific code for participants who failed the attention checks (without one "
        "they get no code, and are told to contact the researcher)",
    )
    v.add_argument(
        "--no-consent-code",
        default=None,
        help="Prolific code for people who decline consent (set it to 'Request a return' "
        "on Prolific: it pays nothing)",
    )
    v.add_argument(
        "--prolific-study",
        default=None,
        help="the Prolific study id; Prolific links with another STUDY_ID are refused",
    )
    v.add_argument(
        "--no-plain-links",
        action="store_true",
        help="refuse participants without platform parameters (so nobody takes part twice "
        "through the plain link)",
    )
    v.add_argument(
        "--abandon-after",
        type=float,
        default=ServeSettings.abandon_after_min,
        metavar="MINUTES",
        help="a session without an answer for this long gives up its slot to the next "
        "participant (its answers are kept, marked abandoned)",
    )
    v.add_argument(
        "--unanswered-after",
        type=float,
        default=ServeSettings.unanswered_after_min,
        metavar="MINUTES",
        help="a session that has not answered its first trial this long after it started "
        "gives up its slot sooner (it can still come back)",
    )
    v.add_argument(
        "--close-when-covered",
        action="store_true",
        help="close the study once every item has its judgments from completed participants",
    )
    v.add_argument(
        "--embed-images-kb",
        type=float,
        default=ServeSettings.embed_kb,
        metavar="KIB",
        help="a trial whose images are each at most this size carries them in its reply "
        "(no image requests); 0: always serve them by URL",
    )
    v.set_defaults(run=_serve)

    e = cmds.add_parser("export", help="write every answer as one long table")
    e.add_argument("study", type=Path)
    add_output(e, help=".csv or .parquet file", overwrite=False)
    e.add_argument("--hash-ids", action="store_true", help="hash the platform ids")
    e.set_defaults(run=_export)

    st = cmds.add_parser(
        "status",
        help="participants, open or closed, and a sequential survey's looks and questions",
    )
    st.add_argument("study", type=Path)
    st.set_defaults(run=_status)

    t = cmds.add_parser("bots", help="run simulated participants through the live service")
    t.add_argument("study", type=Path)
    t.add_argument("--url", required=True, help="base URL of the running service")
    t.add_argument(
        "--n",
        type=int,
        default=20,
        help="number of simulated participants (default: 20; a study's [bots] n is 0, since "
        "a study sends none unless asked, while this command is asked for them)",
    )
    add_options(t, BotSettings)  # as [bots] of a study
    add_seed(t, help="seed of the first simulated participant (the next get SEED+1...)")
    t.set_defaults(run=_bots)


def _texts(path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    from percalign import _toml as tomllib

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read survey texts from {path}: {exc}") from exc
    return {str(k): str(v) for k, v in data.items()}


def _build(args: argparse.Namespace) -> int:
    plan = build_survey(
        args.study,
        args.runs,
        database=args.database,
        overwrite=args.overwrite,
        texts=_texts(args.texts),
        practice=args.practice,
        min_catch_accuracy=args.min_catch_accuracy,
        max_side_share=args.max_side_share,
        min_side_trials=args.min_side_trials,
        requirements=_requirements(args),
        settings=SurveyDesign(**options_from(SurveyDesign, args)),
        seed=args.seed,
        stopping=Stopping(**options_from(Stopping, args)),
    )
    _built(args.study, plan.settings, _texts(args.texts) or {})
    stopping = Stopping(**options_from(Stopping, args))
    for line in stopping.describe() if stopping.asks else []:
        out.print(line)
    return 0


def _requirements(args: argparse.Namespace) -> dict[str, object] | None:
    """The --require-* options as a requirements table (None: nothing required)."""
    from percalign.survey.requirements import parse_browsers

    found: dict[str, object] = {}
    if args.require_viewport:
        size = args.require_viewport.lower().split("x")
        if len(size) != 2 or not all(p.strip().isdigit() for p in size):
            raise ConfigError(
                f"--require-viewport takes WIDTHxHEIGHT in CSS px, such as 800x600; got "
                f"{args.require_viewport!r}."
            )
        found.update(min_width=int(size[0]), min_height=int(size[1]))
    if args.require_pointer != "any":
        found["pointer"] = args.require_pointer
    if args.require_browser:
        found["browsers"] = parse_browsers(args.require_browser)
    return found or None


def _built(folder: Path, settings: dict, texts: dict[str, str]) -> None:
    first, *notes = describe(settings)
    out.print(f"Built {folder}: {first}")
    for note in notes:
        out.print(note)
    for name, fields in unset_placeholders(texts).items():
        out.print(
            f"Warning: the {name} text still has placeholders to fill in: {', '.join(fields)} "
            "(pass --texts FILE with your own texts before serving it to people)."
        )


def _copy(args: argparse.Namespace) -> int:
    from percalign.store.study import read_meta, study_url
    from percalign.survey.build import copy_survey

    plan = copy_survey(
        args.source,
        args.study,
        texts=_texts(args.texts),
        database=args.database,
        overwrite=args.overwrite,
    )
    _built(args.study, plan.settings, read_meta(study_url(args.study)).get("texts", {}))
    return 0


def _warnings(study: Path, url: str) -> list[str]:
    """What makes a study not ready for people: placeholder texts, simulated answers."""
    from sqlalchemy import func, select

    from percalign.store.db import ParticipantRow, connect
    from percalign.store.study import read_meta

    found = []
    for name, fields in unset_placeholders(read_meta(url).get("texts", {})).items():
        found.append(
            f"WARNING: NOT READY FOR PEOPLE: the {name} text still shows {', '.join(fields)}; "
            f"rebuild with your texts: percalign survey copy {study} NEW --texts FILE"
        )
    engine = connect(url)
    try:
        with engine.connect() as c:
            bots = c.scalar(
                select(func.count())
                .select_from(ParticipantRow)
                .where(ParticipantRow.platform == "bot")
            )
    finally:
        engine.dispose()
    if bots:
        found.append(
            f"WARNING: this survey holds the answers of {bots} simulated participants; for "
            f"people, serve a fresh copy: percalign survey copy {study} NEW --texts FILE"
        )
    return found


def _token(study: Path) -> str:
    """The study's admin token: $PERCALIGN_ADMIN_TOKEN, else one kept in the study folder."""
    import os
    import secrets

    env = os.environ.get("PERCALIGN_ADMIN_TOKEN")
    if env:
        return env
    path = study / "admin_token"
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from percalign.store.db import migrate, private_sqlite
    from percalign.store.study import study_url

    # fails early on a folder that is not a study; an older study gets the newer tables, and
    # an older SQLite file the owner-only mode
    url = study_url(args.study)
    private_sqlite(url)
    migrate(url)
    for line in _warnings(args.study, url):
        err.print(f"[bold red]{line}[/]")
    where = (
        "$PERCALIGN_ADMIN_TOKEN"
        if os.environ.get("PERCALIGN_ADMIN_TOKEN")
        else f"the file {args.study / 'admin_token'}"
    )
    token = _token(args.study)
    os.environ["PERCALIGN_STUDY"] = str(args.study.resolve())
    os.environ["PERCALIGN_ADMIN_TOKEN"] = token
    if args.completion_code:
        os.environ["PERCALIGN_COMPLETION_CODE"] = args.completion_code
    if args.failed_code:
        os.environ["PERCALIGN_FAILED_CODE"] = args.failed_code
    if args.no_consent_code:
        os.environ["PERCALIGN_NO_CONSENT_CODE"] = args.no_consent_code
    if args.prolific_study:
        os.environ["PERCALIGN_PROLIFIC_STUDY"] = args.prolific_study
    os.environ["PERCALIGN_PLAIN_LINKS"] = "0" if args.no_plain_links else "1"
    # checked here, not in each worker
    ServeSettings(
        abandon_after_min=args.abandon_after,
        unanswered_after_min=args.unanswered_after,
        embed_kb=args.embed_images_kb,
    )
    os.environ["PERCALIGN_ABANDON_AFTER"] = str(args.abandon_after)
    os.environ["PERCALIGN_UNANSWERED_AFTER"] = str(args.unanswered_after)
    os.environ["PERCALIGN_CLOSE_WHEN_COVERED"] = "1" if args.close_when_covered else "0"
    os.environ["PERCALIGN_EMBED_KB"] = str(args.embed_images_kb)
    base = f"http://{args.host}:{args.port}"
    out.print(
        f"Participant link: {base}/?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}&STUDY_ID="
        "{{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}  (plain link: " + base + "/)"
    )
    out.print(f"Admin: {base}/admin, with the token in {where}")
    uvicorn.run(
        "percalign.survey.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from percalign.store.export import spreadsheet_safe
    from percalign.store.study import read_answers

    table = read_answers(args.study, hash_ids=args.hash_ids)
    tmp = args.out.with_name(args.out.name + ".tmp")
    if args.out.suffix == ".parquet":
        table.to_parquet(tmp, index=False)
    else:  # a CSV is opened in spreadsheets: no cell may run as a formula there
        table.map(spreadsheet_safe).to_csv(tmp, index=False)
    tmp.replace(args.out)
    out.print(
        f"Wrote {len(table)} answers from {table['participant'].nunique() if len(table) else 0}"
        f" participants to {args.out}"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from percalign.scoring.stopping import describe_looks
    from percalign.store.study import survey_summary

    summary = survey_summary(args.study)
    people = ", ".join(f"{n} {status}" for status, n in sorted(summary["participants"].items()))
    out.print(
        f"{args.study}: {'closed' if summary['closed'] else 'open'}; participants: "
        f"{people or 'none yet'}; {summary['answers']} answers."
    )
    state = summary.get("sequential")
    for line in describe_looks(state) if state else ["A fixed plan: no looks."]:
        out.print(line)
    return 0


def _bots(args: argparse.Namespace) -> int:
    from percalign.store.study import bot_token
    from percalign.survey.bots import run_bots

    bots = BotSettings(**options_from(BotSettings, args)).bots(args.n, seed=args.seed)
    done = run_bots(args.url, bots, prefix=f"bot{args.seed}", bot_token=bot_token(args.study))
    out.print(
        f"{len(done)} simulated participants finished "
        f"({sum(done.values())} answers; labelled platform 'bot' everywhere)."
    )
    return 0
