"""create table event_tags

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01 00:00:01

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "event_tags",
        sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True),
        sa.Column(
            "event_id",
            sa.Integer(),
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tag", sa.Text(), nullable=False),
    )
    op.create_index("ix_event_tags_event_id", "event_tags", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_event_tags_event_id", table_name="event_tags")
    op.drop_table("event_tags")
