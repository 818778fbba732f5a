"""carrier_recording: recordings of answers held by the carrier, until it has deleted them

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'carrier_recording',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sid', sa.String(length=64), nullable=False, comment="the carrier's RecordingSid"),
        sa.Column('call_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('deleted_at', sa.DateTime(), nullable=True, comment='when the carrier confirmed it gone'),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_error', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['call_id'], ['call.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('sid'),
    )
    op.create_index(op.f('ix_carrier_recording_call_id'), 'carrier_recording', ['call_id'], unique=False)
    op.create_index(op.f('ix_carrier_recording_deleted_at'), 'carrier_recording', ['deleted_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_carrier_recording_deleted_at'), table_name='carrier_recording')
    op.drop_index(op.f('ix_carrier_recording_call_id'), table_name='carrier_recording')
    op.drop_table('carrier_recording')
