"""call.recordings_checked_at: every ended call is checked at the carrier for recordings left

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recordings_checked_at', sa.DateTime(), nullable=True,
                                      comment='when the carrier was last asked, after the call ended, '
                                              'for recordings left of it'))


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_column('recordings_checked_at')
