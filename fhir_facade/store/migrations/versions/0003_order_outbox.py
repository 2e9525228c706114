"""order outbox for order communication (issue 5)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:20:00

The table is defined once, in fhir_facade/orders/outbox.py, and created from that definition.
"""

from __future__ import annotations

from alembic import op

from fhir_facade.orders.outbox import order_outbox

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    order_outbox.create(op.get_bind())


def downgrade() -> None:
    op.drop_table(order_outbox.name)
