"""load ledger: per extract row, the digest it was last loaded with and what it wrote

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('load_ledger',
    sa.Column('stream', sa.String(length=255), nullable=False,
              comment='source/organisation/extract file of the rows'),
    sa.Column('key', sa.String(length=255), nullable=False, comment="the row's stable id within that file"),
    sa.Column('digest', sa.String(length=32), nullable=False,
              comment="of the row's values and the mapping that loaded it"),
    sa.Column('entry', sa.Text(), nullable=False,
              comment='JSON: the resources the row wrote and the ones it refers to'),
    sa.PrimaryKeyConstraint('stream', 'key')
    )


def downgrade() -> None:
    op.drop_table('load_ledger')
