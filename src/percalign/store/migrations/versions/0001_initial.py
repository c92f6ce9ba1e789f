"""The initial survey schema.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
    )
    op.create_table(
        "stimuli",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.String(256), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.String(400), primary_key=True),
        sa.Column("query", sa.String(64), sa.ForeignKey("stimuli.id"), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("condition", sa.JSON(), nullable=False),
        sa.Column("is_catch", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "slot_trials",
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("item", sa.String(400), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("display_order", sa.JSON(), nullable=False),
        sa.Column("is_catch", sa.Boolean(), nullable=False),
        sa.Column("is_repeat", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "participants",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("slot", sa.Integer(), nullable=False, index=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("platform_pid", sa.String(128), nullable=False),
        sa.Column("platform_study", sa.String(128), nullable=True),
        sa.Column("platform_session", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("screen", sa.JSON(), nullable=True),
        sa.UniqueConstraint("platform", "platform_pid"),
    )
    op.create_table(
        "responses",
        sa.Column("participant", sa.String(32), sa.ForeignKey("participants.id"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("item", sa.String(400), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("choice", sa.Integer(), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("rt_ms", sa.Float(), nullable=True),
        sa.Column("client_time", sa.Float(), nullable=True),
        sa.Column("server_time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("responses", "participants", "slot_trials", "items", "stimuli", "meta"):
        op.drop_table(table)
