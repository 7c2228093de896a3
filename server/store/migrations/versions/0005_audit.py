"""audit trail: one row per request and the patients whose data it carried

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('recorded', sa.BigInteger(), nullable=False, comment='when the answer was decided'),
    sa.Column('request_id', sa.Text(), nullable=True),
    sa.Column('client', sa.Text(), nullable=False,
              comment='client id, or system:<name> of an in-process caller'),
    sa.Column('organization', sa.Text(), nullable=True, comment="the client's organisation, system|value"),
    sa.Column('kind', sa.Text(), nullable=True, comment="the client's kind (access policy)"),
    sa.Column('interaction', sa.Text(), nullable=False, comment='read, search-type, create, ..., operation, token'),
    sa.Column('action', sa.String(length=1), nullable=False, comment='C, R, U, D or E'),
    sa.Column('status', sa.Integer(), nullable=False, comment='the HTTP status answered'),
    sa.Column('resource_type', sa.Text(), nullable=True),
    sa.Column('resource_id', sa.Text(), nullable=True),
    sa.Column('query', sa.Text(), nullable=True, comment='the request as sent: method, path and query (bounded)'),
    sa.Column('purpose', sa.Text(), nullable=True, comment='the stated purpose of use (ETREAT for break-glass)'),
    sa.Column('alert', sa.Boolean(), nullable=False,
              comment='a security alert (break-glass, refused credentials)'),
    sa.Column('detail', sa.Text(), nullable=True, comment='why refused, or the break-glass reason'),
    sa.PrimaryKeyConstraint('pk')
    )
    op.create_index('ix_audit_events_recorded', 'audit_events', ['recorded'])
    op.create_index('ix_audit_events_client', 'audit_events', ['client', 'pk'])
    op.create_table('audit_patients',
    sa.Column('patient', sa.Text(), nullable=False, comment='Patient id whose data the request carried'),
    sa.Column('audit_pk', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('patient', 'audit_pk')
    )


def downgrade() -> None:
    op.drop_table('audit_patients')
    op.drop_index('ix_audit_events_client', table_name='audit_events')
    op.drop_index('ix_audit_events_recorded', table_name='audit_events')
    op.drop_table('audit_events')
