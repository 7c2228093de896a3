"""subscriptions: the transactional outbox of topic events, subscriptions' delivery state, numbered events

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('event_outbox',
    sa.Column('seq', Key, nullable=False, autoincrement=True),
    sa.Column('topic', sa.Text(), nullable=False, comment='the SubscriptionTopic canonical the write triggered'),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('interaction', sa.String(length=8), nullable=False, comment='create, update or delete'),
    sa.Column('recorded', sa.BigInteger(), nullable=False, comment='microseconds since the epoch, UTC'),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_table('subscriptions',
    sa.Column('id', sa.String(length=64), nullable=False, comment="the Subscription resource's id"),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('owner_client', sa.Text(), nullable=False, comment='the client that created it'),
    sa.Column('owner_holder', sa.Text(), nullable=False, comment='kind|organisation token of its owner'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='requested, active, error or off'),
    sa.Column('definition', sa.Text(), nullable=False,
              comment='JSON: endpoint, headers, content, filters, periods'),
    sa.Column('started', sa.BigInteger(), nullable=False,
              comment='microseconds; events recorded before are not its'),
    sa.Column('delivered', sa.BigInteger(), nullable=False, comment='number of the last event the endpoint took'),
    sa.Column('attempts', sa.Integer(), nullable=False, comment='failed attempts since the last success'),
    sa.Column('failing_since', sa.BigInteger(), nullable=True),
    sa.Column('next_attempt', sa.BigInteger(), nullable=False, comment='microseconds; no delivery before'),
    sa.Column('last_sent', sa.BigInteger(), nullable=False,
              comment='microseconds of the last notification taken'),
    sa.Column('heartbeat_due', sa.BigInteger(), nullable=True, comment='microseconds; when a heartbeat is next due'),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_subscriptions_topic', 'subscriptions', ['topic', 'status'])
    op.create_index('ix_subscriptions_holder', 'subscriptions', ['owner_holder'])
    op.create_table('subscription_events',
    sa.Column('subscription', sa.String(length=64), nullable=False),
    sa.Column('number', sa.BigInteger(), nullable=False, autoincrement=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('recorded', sa.BigInteger(), nullable=False, comment='when the write was recorded (microseconds)'),
    sa.PrimaryKeyConstraint('subscription', 'number')
    )


def downgrade() -> None:
    op.drop_table('subscription_events')
    op.drop_index('ix_subscriptions_holder', table_name='subscriptions')
    op.drop_index('ix_subscriptions_topic', table_name='subscriptions')
    op.drop_table('subscriptions')
    op.drop_table('event_outbox')
