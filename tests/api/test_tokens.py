"""`ivr tokens`: a token is shown once, kept hashed, and stops working when revoked."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from ivr.models import ApiToken


def test_a_token_is_shown_once_stored_hashed_and_revoked(runner, sessions, clinic_ids, client):
    (clinic_id, _), _ = clinic_ids
    made = runner.invoke(args=["tokens", "add", str(clinic_id), "Epic scheduling", "--scope", "outcomes:read"])
    assert made.exit_code == 0, made.output
    header, token = made.stdout.splitlines()[:2]
    assert header.endswith(f"for clinic {clinic_id} (outcomes:read):") and token.startswith("ivr_")
    with sessions() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.name == "Epic scheduling"))
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (row.token_hash, row.name, row.scopes)
    assert client.get("/api/v1/outcomes", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listed = runner.invoke(args=["tokens", "list"]).output
    assert "Epic scheduling" in listed and token not in listed and "used " in listed
    assert runner.invoke(args=["tokens", "revoke", str(row.id)]).output.strip() == f"token {row.id}: revoked"
    assert client.get("/api/v1/outcomes", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_token_mistakes_get_one_line(runner, clinic_ids):
    for args, message in ((["add", "999999", "x"], "no clinic with id 999999"),
                          (["add", "1", "x", "--scope", "everything"], "'everything' is not one of"),
                          (["add", "1", "\x00"], "a name is 1 to 100 characters"),
                          (["revoke", "999999"], "no token with id 999999")):
        result = runner.invoke(args=["tokens", *args])
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output, result.output
