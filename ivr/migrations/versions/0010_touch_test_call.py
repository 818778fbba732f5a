"""touch.test_call: a sandbox test call says so itself, instead of by its step's name

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('test_call', sa.Boolean(), server_default=sa.false(), nullable=False,
                                      comment="a sandbox test call: rings at any hour, whatever the "
                                              "appointment's status"))
    # Before this column, a test call was known by its step's name.
    op.execute(sa.text("UPDATE touch SET test_call = :yes WHERE step LIKE 'test-call-%'")
               .bindparams(yes=True))


def downgrade() -> None:
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.drop_column('test_call')
