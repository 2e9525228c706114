"""initial store schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 08:50:50.255089
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('resource_history',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('res_id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_resource_history')),
    sa.UniqueConstraint('res_type', 'res_id', 'version_id', name=op.f('uq_resource_history_res_type_res_id_version_id'))
    )
    with op.batch_alter_table('resource_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resource_history_last_updated'), ['last_updated'], unique=False)
        batch_op.create_index(batch_op.f('ix_resource_history_res_type_last_updated'), ['res_type', 'last_updated'], unique=False)

    op.create_table('resources',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('res_id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.BigInteger(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_resources')),
    sa.UniqueConstraint('res_type', 'res_id', name=op.f('uq_resources_res_type_res_id'))
    )
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resources_res_type_last_updated'), ['res_type', 'last_updated'], unique=False)

    op.create_table('idx_date',
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('low', sa.BigInteger(), nullable=False),
    sa.Column('high', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['resources.pk'], name=op.f('fk_idx_date_resource_pk'), ondelete='CASCADE')
    )
    with op.batch_alter_table('idx_date', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idx_date_res_type_param_low_high'), ['res_type', 'param', 'low', 'high'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_date_resource_pk_param'), ['resource_pk', 'param'], unique=False)

    op.create_table('idx_number',
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['resources.pk'], name=op.f('fk_idx_number_resource_pk'), ondelete='CASCADE')
    )
    with op.batch_alter_table('idx_number', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idx_number_res_type_param_value'), ['res_type', 'param', 'value'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_number_resource_pk_param'), ['resource_pk', 'param'], unique=False)

    op.create_table('idx_quantity',
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('system', sa.String(length=255), nullable=True),
    sa.Column('code', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['resource_pk'], ['resources.pk'], name=op.f('fk_idx_quantity_resource_pk'), ondelete='CASCADE')
    )
    with op.batch_alter_table('idx_quantity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idx_quantity_res_type_param_value'), ['res_type', 'param', 'value'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_quantity_resource_pk_param'), ['resource_pk', 'param'], unique=False)

    op.create_table('idx_reference',
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.String(length=512), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['resources.pk'], name=op.f('fk_idx_reference_resource_pk'), ondelete='CASCADE')
    )
    with op.batch_alter_table('idx_reference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idx_reference_res_type_param_target_id_target_type'), ['res_type', 'param', 'target_id', 'target_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_reference_resource_pk_param'), ['resource_pk', 'param'], unique=False)

    op.create_table('idx_string',
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('value_norm', sa.String(length=255), nullable=False),
    sa.Column('value_exact', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['resources.pk'], name=op.f('fk_idx_string_resource_pk'), ondelete='CASCADE')
    )
    with op.batch_alter_table('idx_string', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idx_string_res_type_param_value_norm'), ['res_type', 'param', 'value_norm'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_string_resource_pk_param'), ['resource_pk', 'param'], unique=False)

    op.create_table('idx_token',
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.String(length=255), nullable=True),
    sa.Column('code', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['resource_pk'], ['resources.pk'], name=op.f('fk_idx_token_resource_pk'), ondelete='CASCADE')
    )
    with op.batch_alter_table('idx_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idx_token_res_type_param_code_system'), ['res_type', 'param', 'code', 'system'], unique=False)
        batch_op.create_index(batch_op.f('ix_idx_token_resource_pk_param'), ['resource_pk', 'param'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('idx_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_token_resource_pk_param'))
        batch_op.drop_index(batch_op.f('ix_idx_token_res_type_param_code_system'))

    op.drop_table('idx_token')
    with op.batch_alter_table('idx_string', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_string_resource_pk_param'))
        batch_op.drop_index(batch_op.f('ix_idx_string_res_type_param_value_norm'))

    op.drop_table('idx_string')
    with op.batch_alter_table('idx_reference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_reference_resource_pk_param'))
        batch_op.drop_index(batch_op.f('ix_idx_reference_res_type_param_target_id_target_type'))

    op.drop_table('idx_reference')
    with op.batch_alter_table('idx_quantity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_quantity_resource_pk_param'))
        batch_op.drop_index(batch_op.f('ix_idx_quantity_res_type_param_value'))

    op.drop_table('idx_quantity')
    with op.batch_alter_table('idx_number', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_number_resource_pk_param'))
        batch_op.drop_index(batch_op.f('ix_idx_number_res_type_param_value'))

    op.drop_table('idx_number')
    with op.batch_alter_table('idx_date', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idx_date_resource_pk_param'))
        batch_op.drop_index(batch_op.f('ix_idx_date_res_type_param_low_high'))

    op.drop_table('idx_date')
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resources_res_type_last_updated'))

    op.drop_table('resources')
    with op.batch_alter_table('resource_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resource_history_res_type_last_updated'))
        batch_op.drop_index(batch_op.f('ix_resource_history_last_updated'))

    op.drop_table('resource_history')
