"""Keeping patients' data out of the logs that libraries write for us.

SQLAlchemy logs every row it returns ("Row (...)": names, dates, providers) once its engine
logger is at DEBUG, which an operator may well set while chasing a slow query. Statement
parameters are already hidden (make_engine sets hide_parameters). Rows are dropped in production
and redacted elsewhere, whatever level the logger is set to.
"""

from __future__ import annotations

import logging

ENGINE_LOGGER = "sqlalchemy.engine.Engine"


class RowValues(logging.Filter):
    """Drops (production) or redacts (elsewhere) the rows SQLAlchemy logs."""

    def __init__(self, drop: bool) -> None:
        super().__init__()
        self.drop = drop

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Row "):
            if self.drop:
                return False
            record.msg, record.args = "Row (values redacted)", ()
        return True


def guard_database_logs(production: bool) -> None:
    """Install the row filter on SQLAlchemy's engine logger (once per process; the last app's
    setting wins, and production drops)."""
    logger = logging.getLogger(ENGINE_LOGGER)
    for old in [f for f in logger.filters if isinstance(f, RowValues)]:
        logger.removeFilter(old)
    logger.addFilter(RowValues(drop=production))
