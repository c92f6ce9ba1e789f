"""Trials on one matching screen share the position of the screen's first trial.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slot_trials") as batch:
        batch.add_column(sa.Column("screen", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slot_trials") as batch:
        batch.drop_column("screen")
