"""clinic.phone is unique: a text or call to a number belongs to one clinic

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '0015'
down_revision: Union[str, Sequence[str], None] = '0014'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        "SELECT phone FROM clinic GROUP BY phone HAVING count(*) > 1")).scalars().all()
    if shared:
        raise RuntimeError(f"clinics share the numbers {', '.join(shared)}: give each clinic its own "
                           "number before upgrading (a patient's text or call must reach one clinic)")
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_clinic_phone', ['phone'])


def downgrade() -> None:
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_constraint('uq_clinic_phone', type_='unique')
