"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:15:34.061404
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('idx_composite',
    sa.Column('pk', sa.BigInteger(), nullable=False),
    sa.Column('sp', sa.BigInteger(), nullable=False),
    sa.Column('system', sa.String(length=255), nullable=False, comment='first component: a token'),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.Column('text', sa.String(length=255), nullable=True, comment='second component as text'),
    sa.Column('text_system', sa.String(length=255), nullable=True),
    sa.Column('lo', sa.Float(), nullable=True, comment='second component as a number or date range'),
    sa.Column('hi', sa.Float(), nullable=True)
    )
    with op.batch_alter_table('idx_composite', schema=None) as batch_op:
        batch_op.create_index('ix_idx_composite_pk', ['pk', 'sp'], unique=False)
        batch_op.create_index('ix_idx_composite_sp_code', ['sp', 'code', 'pk'], unique=False)

    op.create_table('idx_date',
    sa.Column('pk', sa.BigInteger(), nullable=False),
    sa.Column('sp', sa.BigInteger(), nullable=False),
    sa.Column('lo', sa.BigInteger(), nullable=False),
    sa.Column('hi', sa.BigInteger(), nullable=False)
    )
    with op.batch_alter_table('idx_date', schema=None) as batch_op:
        batch_op.create_index('ix_idx_date_pk', ['pk', 'sp', 'lo', 'hi'], unique=False)
        batch_op.create_index('ix_idx_date_sp_hi', ['sp', 'hi', 'pk'], unique=False)
        batch_op.create_index('ix_idx_date_sp_lo', ['sp', 'lo', 'pk'], unique=False)

    op.create_table('idx_number',
    sa.Column('pk', sa.BigInteger(), nullable=False),
    sa.Column('sp', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False)
    )
    with op.batch_alter_table('idx_number', schema=None) as batch_op:
        batch_op.create_index('ix_idx_number_pk', ['pk', 'sp', 'value'], unique=False)
        batch_op.create_index('ix_idx_number_sp_value', ['sp', 'value', 'pk'], unique=False)

    op.create_table('idx_quantity',
    sa.Column('pk', sa.BigInteger(), nullable=False),
    sa.Column('sp', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('system', sa.String(length=255), nullable=False),
    sa.Column('code', sa.String(length=255), nullable=False)
    )
    with op.batch_alter_table('idx_quantity', schema=None) as batch_op:
        batch_op.create_index('ix_idx_quantity_pk', ['pk', 'sp', 'value'], unique=False)
        batch_op.create_index('ix_idx_quantity_sp_value', ['sp', 'value', 'pk'], unique=False)

    op.create_table('idx_reference',
    sa.Column('pk', sa.BigInteger(), nullable=False),
    sa.Column('sp', sa.BigInteger(), nullable=False),
    sa.Column('ttype', sa.String(length=64), nullable=False, comment='target type; empty when unknown'),
    sa.Column('tid', sa.String(length=255), nullable=False, comment='target id, or the URL when not local'),
    sa.Column('tversion', sa.String(length=64), nullable=True)
    )
    with op.batch_alter_table('idx_reference', schema=None) as batch_op:
        batch_op.create_index('ix_idx_reference_pk', ['pk', 'sp'], unique=False)
        batch_op.create_index('ix_idx_reference_sp_target', ['sp', 'tid', 'ttype', 'pk'], unique=False)
        batch_op.create_index('ix_idx_reference_target', ['tid', 'ttype', 'sp', 'pk'], unique=False)

    op.create_table('idx_string',
    sa.Column('pk', sa.BigInteger(), nullable=False),
    sa.Column('sp', sa.BigInteger(), nullable=False),
    sa.Column('norm', sa.String(length=200), nullable=False, comment='lower case, accents removed'),
    sa.Column('exact', sa.Text(), nullable=False)
    )
    with op.batch_alter_table('idx_string', schema=None) as batch_op:
        batch_op.create_index('ix_idx_string_pk', ['pk', 'sp'], unique=False)
        batch_op.create_index(
            'ix_idx_string_sp_norm', ['sp', 'norm', 'pk'], unique=False, postgresql_ops={'norm': 'varchar_pattern_ops'}
        )

    op.create_table('idx_token',
    sa.Column('pk', sa.BigInteger(), nullable=False),
    sa.Column('sp', sa.BigInteger(), nullable=False),
    sa.Column('system', sa.String(length=255), nullable=False, comment='empty string when absent'),
    sa.Column('code', sa.String(length=255), nullable=False)
    )
    with op.batch_alter_table('idx_token', schema=None) as batch_op:
        batch_op.create_index('ix_idx_token_pk', ['pk', 'sp'], unique=False)
        batch_op.create_index('ix_idx_token_sp_code', ['sp', 'code', 'system', 'pk'], unique=False)

    op.create_table('idx_uri',
    sa.Column('pk', sa.BigInteger(), nullable=False),
    sa.Column('sp', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.String(length=512), nullable=False)
    )
    with op.batch_alter_table('idx_uri', schema=None) as batch_op:
        batch_op.create_index('ix_idx_uri_pk', ['pk', 'sp'], unique=False)
        batch_op.create_index(
            'ix_idx_uri_sp_value', ['sp', 'value', 'pk'], unique=False, postgresql_ops={'value': 'varchar_pattern_ops'}
        )

    op.create_table('reindex_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('definitions', sa.String(length=64), nullable=False, comment='digest of the SearchParameters indexed'),
    sa.Column('last_pk', sa.BigInteger(), nullable=False),
    sa.Column('finished', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('resource_versions',
    sa.Column('pk', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('updated', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('body', sa.Text(), nullable=True, comment='the canonical JSON; null for a delete'),
    sa.PrimaryKeyConstraint('pk', 'version')
    )
    with op.batch_alter_table('resource_versions', schema=None) as batch_op:
        batch_op.create_index('ix_versions_type_updated', ['type', 'updated'], unique=False)
        batch_op.create_index('ix_versions_updated', ['updated'], unique=False)

    op.create_table('resources',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated', sa.BigInteger(), nullable=False, comment='microseconds since the epoch, UTC'),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('type', 'id', name='uq_resources_type_id')
    )
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.create_index('ix_resources_type_updated', ['type', 'updated'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        tune_postgresql()


def tune_postgresql() -> None:
    """Faster compression for stored JSON, and statistics the planner needs for hashed parameter keys."""
    op.execute("ALTER TABLE resource_versions ALTER COLUMN body SET COMPRESSION lz4")
    for table, columns in (("idx_token", "sp, code"), ("idx_reference", "sp, tid"), ("idx_string", "sp, norm"),
                           ("idx_date", "sp, lo"), ("idx_quantity", "sp, value"), ("idx_uri", "sp, value"),
                           ("idx_composite", "sp, code"), ("idx_number", "sp, value")):
        op.execute(f"ALTER TABLE {table} ALTER COLUMN sp SET STATISTICS 1000")
        op.execute(f"CREATE STATISTICS {table}_sp_value (dependencies, ndistinct, mcv) ON {columns} FROM {table}")


def downgrade() -> None:
    with op.batch_alter_table('resources', schema=None) as batch_op:
        batch_op.drop_index('ix_resources_type_updated')

    op.drop_table('resources')
    with op.batch_alter_table('resource_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_versions_updated')
        batch_op.drop_index('ix_versions_type_updated')

    op.drop_table('resource_versions')
    op.drop_table('reindex_state')
    with op.batch_alter_table('idx_uri', schema=None) as batch_op:
        batch_op.drop_index('ix_idx_uri_sp_value', postgresql_ops={'value': 'varchar_pattern_ops'})
        batch_op.drop_index('ix_idx_uri_pk')

    op.drop_table('idx_uri')
    with op.batch_alter_table('idx_token', schema=None) as batch_op:
        batch_op.drop_index('ix_idx_token_sp_code')
        batch_op.drop_index('ix_idx_token_pk')

    op.drop_table('idx_token')
    with op.batch_alter_table('idx_string', schema=None) as batch_op:
        batch_op.drop_index('ix_idx_string_sp_norm', postgresql_ops={'norm': 'varchar_pattern_ops'})
        batch_op.drop_index('ix_idx_string_pk')

    op.drop_table('idx_string')
    with op.batch_alter_table('idx_reference', schema=None) as batch_op:
        batch_op.drop_index('ix_idx_reference_target')
        batch_op.drop_index('ix_idx_reference_sp_target')
        batch_op.drop_index('ix_idx_reference_pk')

    op.drop_table('idx_reference')
    with op.batch_alter_table('idx_quantity', schema=None) as batch_op:
        batch_op.drop_index('ix_idx_quantity_sp_value')
        batch_op.drop_index('ix_idx_quantity_pk')

    op.drop_table('idx_quantity')
    with op.batch_alter_table('idx_number', schema=None) as batch_op:
        batch_op.drop_index('ix_idx_number_sp_value')
        batch_op.drop_index('ix_idx_number_pk')

    op.drop_table('idx_number')
    with op.batch_alter_table('idx_date', schema=None) as batch_op:
        batch_op.drop_index('ix_idx_date_sp_lo')
        batch_op.drop_index('ix_idx_date_sp_hi')
        batch_op.drop_index('ix_idx_date_pk')

    op.drop_table('idx_date')
    with op.batch_alter_table('idx_composite', schema=None) as batch_op:
        batch_op.drop_index('ix_idx_composite_sp_code')
        batch_op.drop_index('ix_idx_composite_pk')

    op.drop_table('idx_composite')
