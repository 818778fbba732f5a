"""Webhooks to the clinic's own systems: endpoints, one delivery per event and endpoint (the
outbox, written in the transaction that made the change), and every attempt at it

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0026'
down_revision: Union[str, Sequence[str], None] = '0025'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'webhook_endpoint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False, comment='where events are POSTed'),
        sa.Column('secret', sa.String(length=100), nullable=False,
                  comment='whsec_...: signs each delivery (Standard Webhooks); shown once when made'),
        sa.Column('events', sa.String(length=500), nullable=False,
                  comment='space-separated event types it wants, or * for all'),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('disabled_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], name='fk_webhook_endpoint_clinic_id'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhook_endpoint_clinic_id', 'webhook_endpoint', ['clinic_id'])
    op.create_table(
        'webhook_delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('endpoint_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.String(length=40), nullable=False,
                  comment='webhook-id: the same on every attempt, so a receiver can drop repeats'),
        sa.Column('event_type', sa.String(length=40), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False, comment='the JSON body, exactly as signed and sent'),
        sa.Column('status', sa.String(length=12), nullable=False, server_default='pending',
                  comment='pending, delivered, failed (every attempt used)'),
        sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('delivered_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], name='fk_webhook_delivery_endpoint_id'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('message_id', name='uq_webhook_delivery_message_id'),
    )
    op.create_index('ix_webhook_delivery_endpoint_id', 'webhook_delivery', ['endpoint_id'])
    op.create_index('ix_webhook_delivery_status', 'webhook_delivery', ['status'])
    op.create_table(
        'webhook_attempt',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.Integer(), nullable=False),
        sa.Column('attempted_at', sa.DateTime(), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True, comment="the receiver's HTTP status; None: no answer"),
        sa.Column('error', sa.String(length=200), nullable=True, comment='why it failed, without the body'),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['delivery_id'], ['webhook_delivery.id'], name='fk_webhook_attempt_delivery_id'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhook_attempt_delivery_id', 'webhook_attempt', ['delivery_id'])


def downgrade() -> None:
    op.drop_index('ix_webhook_attempt_delivery_id', table_name='webhook_attempt')
    op.drop_table('webhook_attempt')
    op.drop_index('ix_webhook_delivery_status', table_name='webhook_delivery')
    op.drop_index('ix_webhook_delivery_endpoint_id', table_name='webhook_delivery')
    op.drop_table('webhook_delivery')
    op.drop_index('ix_webhook_endpoint_clinic_id', table_name='webhook_endpoint')
    op.drop_table('webhook_endpoint')
