"""audit spools: how much of each server process's audit spool file is already in the audit trail

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_spools',
    sa.Column('name', sa.Text(), nullable=False, comment="a server process's audit spool file (AUDIT_SPOOL_DIR)"),
    sa.Column('shipped', sa.BigInteger(), nullable=False, comment='bytes of it already in audit_events'),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('audit_spools')
