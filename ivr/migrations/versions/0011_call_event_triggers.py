"""call_event is append-only in the database itself: triggers refuse UPDATE and DELETE

The ORM already refused them; plain SQL did not. (SQLite's batch mode rebuilds a table without
its triggers: a later migration that alters call_event in batch mode must create them again.)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

"""
from typing import Sequence, Union

from alembic import op

revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MESSAGE = "call_event is part of the audit trail: append-only"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION call_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation';
            END $$""")
        op.execute("CREATE TRIGGER call_event_append_only BEFORE UPDATE OR DELETE ON call_event "
                   "FOR EACH ROW EXECUTE FUNCTION call_event_append_only()")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER call_event_no_{action.lower()} BEFORE {action} ON call_event "
                       f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER call_event_append_only ON call_event")
        op.execute("DROP FUNCTION call_event_append_only()")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER call_event_no_{action}")
