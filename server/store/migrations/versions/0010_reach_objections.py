"""reach objections: the standing objections to sharing, kept as rows

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # filled by the server when a caller that honours objections first needs them (no `objections` marker yet)
    op.create_table('reach_objections',
    sa.Column('patient', sa.Text(), nullable=False, comment='a Patient id with a standing objection'),
    sa.Column('consent_pk', sa.BigInteger(), nullable=False, comment="the objection Consent's resources.pk"),
    sa.PrimaryKeyConstraint('patient', 'consent_pk')
    )
    op.create_index('ix_reach_objections_consent', 'reach_objections', ['consent_pk'])


def downgrade() -> None:
    op.drop_index('ix_reach_objections_consent', table_name='reach_objections')
    op.drop_table('reach_objections')
    op.execute(sa.text("DELETE FROM reach_holders WHERE holder = 'objections'"))
