"""CDS cards issued and feedback received

Revision ID: cds0001
Revises:
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cds0001"
down_revision = None
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cds_card",
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("hook_instance", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(128), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("order_ref", sa.String(200)),
        sa.Column("iss", sa.String(512), nullable=False),
        sa.Column("suggestions", sa.Text(), nullable=False),
        sa.Column("issued_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_cds_card")),
    )
    op.create_index(op.f("ix_cds_card_hook_instance"), "cds_card", ["hook_instance"])
    op.create_table(
        "cds_feedback",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("dedup_key", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("card_uuid", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("accepted_suggestions", sa.Text(), nullable=False),
        sa.Column("reason_system", sa.String(512)),
        sa.Column("reason_code", sa.String(128)),
        sa.Column("reason_display", sa.String(512)),
        sa.Column("user_comment", sa.Text()),
        sa.Column("outcome_timestamp", sa.String(40), nullable=False),
        sa.Column("outcome_us", sa.BigInteger(), nullable=False),
        sa.Column("iss", sa.String(512), nullable=False),
        sa.Column("sub", sa.String(512)),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_cds_feedback")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_cds_feedback_dedup_key")),
    )
    op.create_index(op.f("ix_cds_feedback_card_uuid"), "cds_feedback", ["card_uuid"])


def downgrade() -> None:
    op.drop_index(op.f("ix_cds_feedback_card_uuid"), table_name="cds_feedback")
    op.drop_table("cds_feedback")
    op.drop_index(op.f("ix_cds_card_hook_instance"), table_name="cds_card")
    op.drop_table("cds_card")
