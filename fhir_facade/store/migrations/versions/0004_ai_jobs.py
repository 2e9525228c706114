"""ai_jobs: the imaging AI pipeline's durable job queue (issue 7)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 12:10:00

The table is defined once, in models/jobs.py, and created from that definition.
"""

from __future__ import annotations

from alembic import op

from models.jobs import jobs

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    jobs.create(op.get_bind())


def downgrade() -> None:
    op.drop_table(jobs.name)
