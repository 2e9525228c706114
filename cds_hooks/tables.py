"""The CDS service's own tables, in the facade's database but under their own metadata and
migrations (version table `cds_alembic_version`), so either side can evolve alone.

`cds_card` remembers every card issued (uuid, service, kind, patient): feedback names only the
card's uuid, and the report needs the rest. `cds_feedback` holds each distinct feedback once:
`dedup_key` is a hash of its content, so a client repeating a batch adds nothing.
Timestamps are integer microseconds since the epoch, as in the facade's store.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)
PK = BigInteger().with_variant(Integer(), "sqlite")

cds_card = Table(
    "cds_card",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("service_id", String(128), nullable=False),
    Column("hook", String(64), nullable=False),
    Column("hook_instance", String(64), nullable=False, index=True),
    Column("kind", String(128), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("patient_id", String(64)),
    Column("order_ref", String(200)),
    Column("iss", String(512), nullable=False),
    Column("suggestions", Text, nullable=False),  # JSON array of suggestion uuids
    Column("issued_us", BigInteger, nullable=False),
)

cds_feedback = Table(
    "cds_feedback",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("dedup_key", String(64), nullable=False, unique=True),
    Column("service_id", String(128), nullable=False),
    Column("card_uuid", String(64), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", Text, nullable=False),  # JSON array of suggestion uuids
    Column("reason_system", String(512)),
    Column("reason_code", String(128)),
    Column("reason_display", String(512)),
    Column("user_comment", Text),
    Column("outcome_timestamp", String(40), nullable=False),
    Column("outcome_us", BigInteger, nullable=False),
    Column("iss", String(512), nullable=False),
    Column("sub", String(512)),
    Column("received_us", BigInteger, nullable=False),
)
