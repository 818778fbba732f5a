"""Errors as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Response, json, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)
PROBLEM_TYPE = "about:blank"  # RFC 9457: the title is the HTTP status phrase


def problem(status: int, detail: str, title: str | None = None, **members: Any) -> Response:
    """A problem details response."""
    from http import HTTPStatus

    body = {"type": PROBLEM_TYPE, "title": title or HTTPStatus(status).phrase, "status": status, "detail": detail}
    body.update({k: v for k, v in members.items() if v is not None})
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def answer_api_errors_only(error: HTTPException):
    """Under /api/, any HTTP error as a problem; elsewhere the error as it was."""
    if not request.path.startswith("/api/"):
        return error
    if error.response is not None:  # a problem made on purpose (abort(problem(...)))
        return error.response
    data = getattr(error, "data", None) or {}
    errors = data.get("messages")  # webargs: {"json": {"field": ["message"]}}
    detail = error.description if isinstance(error.description, str) else error.name
    if errors:
        detail = "the request does not match the schema: see errors"
    response = problem(error.code or 500, detail, errors=errors)
    for name, value in error.get_headers():
        if name.lower() in ("retry-after", "www-authenticate", "allow") or name.lower().startswith("x-ratelimit"):
            response.headers[name] = value
    return response


def unexpected(error: Exception):
    """An API request that failed: logged by its route and stack frames only (the path holds the
    clinic's ids, and an exception's message or locals may hold PHI); answered with a 500 problem."""
    if isinstance(error, HTTPException):
        return answer_api_errors_only(error)
    rule = request.url_rule.rule if request.url_rule else "?"
    log.error("API %s %s failed with %s\n%s", request.method, rule, type(error).__name__,
              "".join(traceback.format_tb(error.__traceback__)))
    return problem(500, "the server failed to answer; nothing was changed")
