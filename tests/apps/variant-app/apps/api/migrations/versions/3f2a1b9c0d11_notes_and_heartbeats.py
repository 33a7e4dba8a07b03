"""notes and worker heartbeats

Revision ID: 3f2a1b9c0d11
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "3f2a1b9c0d11"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "heartbeats",
        sa.Column("worker", sa.Text(), primary_key=True),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table("heartbeats")
    op.drop_table("notes")
