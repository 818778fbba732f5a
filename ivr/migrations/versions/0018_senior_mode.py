"""Senior mode: clinic.senior_mode (the default), patient.senior_mode (None: the clinic's)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0018'
down_revision: Union[str, Sequence[str], None] = '0017'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'senior_mode', sa.Boolean(), server_default=sa.false(), nullable=False,
            comment='the default for patients without their own: slower speech, longer waits, a question '
                    'repeated once before it counts as missed'))
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('senior_mode', sa.Boolean(), nullable=True,
                                      comment="None: the clinic's default"))


def downgrade() -> None:
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_column('senior_mode')
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_column('senior_mode')
