"""security: system clients, client-assertion ids seen, revoked access tokens, the server's signing keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clients',
    sa.Column('id', sa.Text(), nullable=False, comment='client_id: iss and sub of its assertions'),
    sa.Column('organization', sa.Text(), nullable=False, comment='identifier token system|value'),
    sa.Column('kind', sa.Text(), nullable=False, comment='access policy name (profiles/access/<kind>.yaml)'),
    sa.Column('scope', sa.Text(), nullable=False, comment='registered SMART scopes, space-separated'),
    sa.Column('jwks', sa.Text(), nullable=True, comment='public JWKS by value (JSON)'),
    sa.Column('jwks_uri', sa.Text(), nullable=True, comment="https URL of the client's public JWKS"),
    sa.Column('created', sa.BigInteger(), nullable=False),
    sa.Column('revoked', sa.BigInteger(), nullable=True, comment='when revoked; its tokens stop working'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('assertion_jtis',
    sa.Column('client_id', sa.Text(), nullable=False),
    sa.Column('jti', sa.Text(), nullable=False),
    sa.Column('expires', sa.BigInteger(), nullable=False,
              comment="the assertion's exp; the row may go after it"),
    sa.PrimaryKeyConstraint('client_id', 'jti')
    )
    with op.batch_alter_table('assertion_jtis', schema=None) as batch_op:
        batch_op.create_index('ix_assertion_jtis_expires', ['expires'], unique=False)

    op.create_table('token_revocations',
    sa.Column('jti', sa.Text(), nullable=False, comment='jti of a revoked access token'),
    sa.Column('expires', sa.BigInteger(), nullable=False, comment="the token's exp; the row may go after it"),
    sa.PrimaryKeyConstraint('jti')
    )
    op.create_table('signing_keys',
    sa.Column('kid', sa.Text(), nullable=False),
    sa.Column('private_jwk', sa.Text(), nullable=False,
              comment='the private JWK (JSON) signing access tokens'),
    sa.Column('created', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kid')
    )


def downgrade() -> None:
    op.drop_table('signing_keys')
    op.drop_table('token_revocations')
    with op.batch_alter_table('assertion_jtis', schema=None) as batch_op:
        batch_op.drop_index('ix_assertion_jtis_expires')
    op.drop_table('assertion_jtis')
    op.drop_table('clients')
