"""reach holders' basis: the relationships a holder's rows were evaluated by, so an edited policy remakes them

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL on the rows made before it: they are made whole again when next needed
    op.add_column('reach_holders', sa.Column('basis', sa.Text(), nullable=True,
                                             comment="a digest of the relationships its rows were evaluated by"))


def downgrade() -> None:
    op.drop_column('reach_holders', 'basis')
