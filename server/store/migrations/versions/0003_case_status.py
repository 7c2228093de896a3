"""case status: each patient's precomputed $case-status answer and the generation that keeps it fresh

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_status',
    sa.Column('patient_pk', sa.BigInteger(), autoincrement=False, nullable=False,
              comment="the Patient's resources.pk"),
    sa.Column('generation', sa.BigInteger(), nullable=False,
              comment='bumped by every write the answer depends on'),
    sa.Column('day', sa.String(length=10), nullable=True,
              comment='the date the answer was made for, if it depends on it'),
    sa.Column('basis', sa.String(length=32), nullable=False,
              comment='digest of the rule sets and answer format used'),
    sa.Column('body', sa.Text(), nullable=True,
              comment='the $case-status Parameters as served; NULL when stale'),
    sa.PrimaryKeyConstraint('patient_pk')
    )


def downgrade() -> None:
    op.drop_table('case_status')
