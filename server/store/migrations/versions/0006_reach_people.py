"""reach: the people each organisation holds, kept as rows

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 23:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reach_holders',
    sa.Column('holder', sa.Text(), nullable=False, comment='kind|organisation token'),
    sa.Column('day', sa.String(length=10), nullable=False,
              comment='the day its relationships were last evaluated whole'),
    sa.PrimaryKeyConstraint('holder')
    )
    op.create_table('reach_people',
    sa.Column('holder', sa.Text(), nullable=False),
    sa.Column('patient', sa.Text(), nullable=False, comment='a Patient id the holder holds'),
    sa.PrimaryKeyConstraint('holder', 'patient')
    )


def downgrade() -> None:
    op.drop_table('reach_people')
    op.drop_table('reach_holders')
