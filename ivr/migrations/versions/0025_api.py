"""The API: tokens per clinic (stored hashed) and the clinic's own ids for its patients,
appointments and prescriptions

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0025'
down_revision: Union[str, Sequence[str], None] = '0024'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'api_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False, comment='what uses it ("scheduling system")'),
        sa.Column('scopes', sa.String(length=200), nullable=False, comment='space-separated: records:write ...'),
        sa.Column('token_hash', sa.String(length=64), nullable=False,
                  comment='SHA-256 of the token, hex; the token itself is shown once and never stored'),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], name='fk_api_token_clinic_id'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash', name='uq_api_token_token_hash'),
    )
    op.create_index('ix_api_token_clinic_id', 'api_token', ['clinic_id'])
    op.create_table(
        'external_ref',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False, comment='patient, appointment or prescription'),
        sa.Column('system', sa.String(length=200), nullable=False, server_default='',
                  comment="whose id: '' for the clinic's scheduling system (the API), else a FHIR identifier system"),
        sa.Column('value', sa.String(length=200), nullable=False, comment='the id in that system'),
        sa.Column('row_id', sa.Integer(), nullable=False, comment='the id of the patient, appointment or prescription'),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], name='fk_external_ref_clinic_id'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('clinic_id', 'kind', 'system', 'value', name='uq_external_ref_id'),
    )
    op.create_index('ix_external_ref_row', 'external_ref', ['kind', 'row_id'])


def downgrade() -> None:
    op.drop_index('ix_external_ref_row', table_name='external_ref')
    op.drop_table('external_ref')
    op.drop_index('ix_api_token_clinic_id', table_name='api_token')
    op.drop_table('api_token')
