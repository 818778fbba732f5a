"""touch.flow: which call flow a planned contact runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Every existing touch was a reminder."""
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flow', sa.String(length=40), server_default='reminder',
                                      nullable=False, comment='the call flow this contact runs'))
        batch_op.alter_column('step', existing_type=sa.String(length=40),
                              comment='which planned contact: reminder, test-call-...',
                              existing_comment='e.g. reminder', existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.alter_column('step', existing_type=sa.String(length=40), comment='e.g. reminder',
                              existing_comment='which planned contact: reminder, test-call-...',
                              existing_nullable=False)
        batch_op.drop_column('flow')
