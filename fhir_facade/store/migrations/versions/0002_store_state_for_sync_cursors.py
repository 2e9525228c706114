"""store state for sync cursors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 08:59:16.290475
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('store_state',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_store_state'))
    )


def downgrade() -> None:
    op.drop_table('store_state')
