"""Fixtures for the API: the demo clinic and a second clinic, each with a token."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from ivr.api.tokens import add_token
from ivr.models import API_SCOPES, Clinic, Location


@dataclass
class ApiClient:
    """A test client that sends one clinic's token."""

    client: object
    token: str
    clinic_id: int
    location_id: int

    def _headers(self):
        return {"Authorization": f"Bearer {self.token}"}

    def put(self, path, body):
        return self.client.put(f"/api/v1{path}", json=body, headers=self._headers())

    def get(self, path, **params):
        return self.client.get(f"/api/v1{path}", query_string=params, headers=self._headers())

    def delete(self, path):
        return self.client.delete(f"/api/v1{path}", headers=self._headers())


def make_token(sessions, clinic_id: int, scopes=API_SCOPES) -> str:
    with sessions.begin() as session:
        return add_token(session, clinic_id, "scheduling system", list(scopes))[1]


@pytest.fixture
def clinic_ids(sessions, demo):
    """(demo clinic, its first location), (another clinic, its location)."""
    with sessions.begin() as session:
        demo_clinic = session.scalar(select(Clinic).order_by(Clinic.id))
        demo_location = session.scalar(select(Location.id).where(Location.clinic_id == demo_clinic.id))
        other = Clinic(name="Lakeside Clinic", phone="+13125550100", timezone="America/Chicago")
        session.add(other)
        session.flush()
        location = Location(clinic_id=other.id, name="Lake Street")
        session.add(location)
        session.flush()
        return (demo_clinic.id, demo_location), (other.id, location.id)


@pytest.fixture
def api(client, sessions, clinic_ids) -> ApiClient:
    """The demo clinic's scheduling system, with every scope."""
    (clinic_id, location_id), _ = clinic_ids
    return ApiClient(client, make_token(sessions, clinic_id), clinic_id, location_id)


@pytest.fixture
def other_api(client, sessions, clinic_ids) -> ApiClient:
    """Another clinic's scheduling system, with every scope."""
    _, (clinic_id, location_id) = clinic_ids
    return ApiClient(client, make_token(sessions, clinic_id), clinic_id, location_id)
