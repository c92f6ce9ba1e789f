"""The study database: schema (SQLAlchemy 2), connection, and migrations (Alembic).

SQLite (a file in the study folder, WAL mode) by default; any SQLAlchemy URL, such as
``postgresql+psycopg://...``, for a served survey with several app workers.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from percalign.errors import ConfigError

__all__ = [
    "Base",
    "CommentRow",
    "ItemRow",
    "MetaRow",
    "ParticipantRow",
    "ResponseRow",
    "SlotTrialRow",
    "StimulusRow",
    "connect",
    "migrate",
    "now",
    "private_sqlite",
    "slot_rows",
]


def now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    """Study-wide settings and state (the spec, the plan's settings, open/closed)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class StimulusRow(Base):
    """An image people see, stored once under its content hash, with its provenance."""

    __tablename__ = "stimuli"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the PNG
    kind: Mapped[str] = mapped_column(String(16))  # iri | target | seed
    path: Mapped[str] = mapped_column(String(256))
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)


class ItemRow(Base):
    __tablename__ = "items"
    id: Mapped[str] = mapped_column(String(400), primary_key=True)
    query: Mapped[str] = mapped_column(ForeignKey("stimuli.id"))
    candidates: Mapped[list[str]] = mapped_column(JSON)
    condition: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_catch: Mapped[bool] = mapped_column(Boolean, default=False)


class SlotTrialRow(Base):
    """Trial ``position`` of slot ``slot``: the sequence one participant answers."""

    __tablename__ = "slot_trials"
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item: Mapped[str] = mapped_column(ForeignKey("items.id"))
    display_order: Mapped[list[int]] = mapped_column(JSON)
    is_catch: Mapped[bool] = mapped_column(Boolean, default=False)
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    # on a matching screen: the position of the screen's first trial (answered together)
    screen: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ParticipantRow(Base):
    """A session. ``id`` is the internal pseudonym; platform ids are kept apart."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("platform", "platform_pid"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, index=True)
    platform: Mapped[str] = mapped_column(String(16))  # prolific | mturk | link | bot
    platform_pid: Mapped[str] = mapped_column(String(128))
    platform_study: Mapped[str | None] = mapped_column(String(128), nullable=True)
    platform_session: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # active | completed | failed_attention | abandoned (silent past --abandon-after)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the session's start or its latest answer (the server's clock)
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    screen: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ResponseRow(Base):
    """One acknowledged answer; the primary key makes a resubmission a no-op."""

    __tablename__ = "responses"
    participant: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item: Mapped[str] = mapped_column(ForeignKey("items.id"))
    choice: Mapped[int] = mapped_column(Integer)  # display position chosen
    correct: Mapped[bool] = mapped_column(Boolean)
    rt_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    client_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    # from serving the trial to receiving the answer, by the server's clock
    server_rt_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    server_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    # the version (a hash) of the participant page and texts the answer was given under
    page_version: Mapped[str | None] = mapped_column(String(32), nullable=True)


class CommentRow(Base):
    """Free text a participant sent ("report a problem"); ``key`` makes a resend a no-op."""

    __tablename__ = "comments"
    participant: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # chosen by the client
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)  # trial on screen
    text: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class LookRow(Base):
    """One question's state after one look of a sequential survey
    (:class:`~percalign.scoring.sequential.Look`'s fields in ``values``)."""

    __tablename__ = "looks"
    look: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0, 1, ...
    contrast: Mapped[str] = mapped_column(String(200), primary_key=True)
    participants: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


def slot_rows(slot: int, trials: Any) -> list[SlotTrialRow]:
    """The rows of one slot's trials (:class:`~percalign.survey.plan.Trial`), in order."""
    return [
        SlotTrialRow(
            slot=slot,
            position=p,
            item=t.item,
            display_order=list(t.order),
            is_catch=t.is_catch,
            is_repeat=t.is_repeat,
            screen=t.screen,
        )
        for p, t in enumerate(trials)
    ]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # an acknowledged answer survives a power cut
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def connect(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, full sync, foreign keys and a busy timeout.

    Server databases (PostgreSQL) get pooled connections that are checked before use, so a
    restarted database server costs no request. A missing driver is named with its install.
    """
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_timeout=10)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"The database URL {url.split('://')[0]}://... needs the driver {exc.name!r}; "
            "for PostgreSQL run `pip install 'percalign[postgres]'`."
        ) from exc
    return engine


def private_sqlite(url: str) -> None:
    """Make the SQLite file of ``url`` (and its WAL files) readable by its owner only.

    The study database holds the key of the participants' tokens and raw platform ids. A
    missing file is created empty with mode 600 (SQLite then gives its WAL files the same
    mode); other URLs are left alone.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or ":memory:" in url:
        return
    path = Path(url.removeprefix(prefix))
    if not path.exists():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists():
            file.chmod(0o600)


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` with the project's Alembic migrations."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, revision)
