"""The API against its own OpenAPI document: requests generated from the document (schemathesis,
derandomized), valid and not, never get a 5xx and every response matches the document."""

from __future__ import annotations

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance
from hypothesis import HealthCheck, given, settings

from tests.api.test_records import ANNA, visit


def test_every_operation_answers_as_documented(app, api):
    assert api.put("/patients/P-1", ANNA).status_code == 201
    assert api.put("/appointments/A-1", visit(location_id=api.location_id)).status_code == 201
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {api.token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 15

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=30, derandomize=True, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def answers_as_documented(case):
            # A 422 for a body the document allows is right when what is wrong is beyond a schema:
            # a phone number that is not one, a patient or location not the clinic's.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        answers_as_documented()
