"""What the API takes and gives, as marshmallow schemas (the OpenAPI document is made from them)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError, fields, validate, validates

from ivr.models import APPOINTMENT_STATUSES, utcnow
from prompts import available_languages
from prompts.spoken import PROVIDER_TITLES

EXTERNAL_ID = {"pattern": r"^[A-Za-z0-9._:~-]{1,64}$",
               "description": "the clinic's own id: letters, digits and . _ : ~ -, up to 64"}
NAME = validate.Length(min=1, max=100)
# Times and days a clinic can mean: beyond them, dates overflow when moved between time zones.
EARLIEST, LATEST = dt.datetime(1900, 1, 2, tzinfo=dt.timezone.utc), dt.datetime(2199, 12, 31, tzinfo=dt.timezone.utc)
IN_RANGE = validate.Range(min=EARLIEST, max=LATEST, error="must be between 1900 and 2199")
DAY_IN_RANGE = validate.Range(min=EARLIEST.date(), max=LATEST.date(), error="must be between 1900 and 2199")


def _zone(value: str | None) -> None:
    if value is None:
        return
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not an IANA time zone (America/New_York)") from None


class Problem(Schema):
    """RFC 9457 problem details."""

    type = fields.String(metadata={"description": "about:blank: the title is the HTTP status phrase"})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String(metadata={"description": "what was wrong, for a person"})
    errors = fields.Dict(metadata={"description": "per request part and field, what was wrong with it"})


class PatientIn(Schema):
    first_name = fields.String(required=True, validate=NAME)
    last_name = fields.String(required=True, validate=NAME)
    phone = fields.String(required=True, validate=validate.Length(min=3, max=40),
                          metadata={"description": "any form the clinic's country writes (stored as E.164)"})
    date_of_birth = fields.Date(load_default=None, allow_none=True, validate=DAY_IN_RANGE)
    language = fields.String(load_default="en", validate=validate.OneOf(available_languages()))
    timezone = fields.String(load_default=None, allow_none=True, validate=_zone,
                             metadata={"description": "the patient's own zone; none: the clinic's"})
    preferred_channel = fields.String(load_default="voice", validate=validate.OneOf(("voice", "sms")))
    senior_mode = fields.Boolean(load_default=None, allow_none=True,
                                 metadata={"description": "slower, more patient prompts; none: the clinic's default"})
    high_priority = fields.Boolean(load_default=False)
    consent_at = fields.AwareDateTime(load_default=None, allow_none=True, validate=IN_RANGE, metadata={
        "description": "when the patient agreed to automated calls and texts; campaigns that require consent "
                       "skip patients without it. Once given, it stays until the patient opts out"})

    @validates("date_of_birth")
    def _not_future(self, value: dt.date | None, **_kwargs) -> None:
        if value is not None and value > utcnow().date():
            raise ValidationError("a date of birth cannot be in the future")


class PatientOut(Schema):
    id = fields.Integer(metadata={"description": "this server's id"})
    external_id = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    phone = fields.String()
    date_of_birth = fields.Date(allow_none=True)
    language = fields.String()
    timezone = fields.String(allow_none=True)
    preferred_channel = fields.String()
    senior_mode = fields.Boolean(allow_none=True)
    high_priority = fields.Boolean()
    consent_at = fields.AwareDateTime(allow_none=True)
    opted_out = fields.Boolean(metadata={"description": "the patient asked not to be contacted"})


class AppointmentIn(Schema):
    patient = fields.String(required=True, validate=validate.Regexp(EXTERNAL_ID["pattern"]),
                            metadata={"description": "the patient's external id (PUT the patient first)"})
    location_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**31 - 1))
    provider_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    provider_title = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(PROVIDER_TITLES))
    starts_at = fields.AwareDateTime(required=True, validate=IN_RANGE,
                                     metadata={"description": "ISO 8601 with its offset"})
    appointment_type = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=40))
    status = fields.String(load_default="booked", validate=validate.OneOf(("booked", "confirmed", "cancelled",
                                                                           "no_show")))


class AppointmentOut(Schema):
    id = fields.Integer()
    external_id = fields.String()
    patient = fields.String(metadata={"description": "the patient's external id"})
    location_id = fields.Integer()
    provider_name = fields.String()
    provider_title = fields.String(allow_none=True)
    starts_at = fields.AwareDateTime()
    appointment_type = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(APPOINTMENT_STATUSES))
    recovery_planned = fields.Integer(metadata={"description": "contacts planned by this request to win a missed "
                                                               "visit back"})


class PrescriptionIn(Schema):
    patient = fields.String(required=True, validate=validate.Regexp(EXTERNAL_ID["pattern"]))
    medication = fields.String(required=True, validate=validate.Length(min=1, max=200))
    active = fields.Boolean(load_default=True)
    refill_due_on = fields.Date(load_default=None, allow_none=True, validate=DAY_IN_RANGE,
                                metadata={"description": "the day the patient runs out; none: not prompted"})
    refills_left = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=0, max=99),
                                  metadata={"description": "fills still allowed; left out: as it was, one fewer "
                                                           "on a fill"})
    pharmacy_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    pharmacy_phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=3, max=40))


class PrescriptionOut(Schema):
    id = fields.Integer()
    external_id = fields.String()
    patient = fields.String()
    medication = fields.String()
    active = fields.Boolean()
    refill_due_on = fields.Date(allow_none=True)
    refills_left = fields.Integer(allow_none=True)
    pharmacy_name = fields.String(allow_none=True)
    pharmacy_phone = fields.String(allow_none=True)


class PageArgs(Schema):
    cursor = fields.String(load_default=None, validate=validate.Length(max=200),
                           metadata={"description": "the next_cursor of the page before"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    since = fields.AwareDateTime(load_default=None, validate=IN_RANGE,
                                 metadata={"description": "only what changed at or after this"})


class OutcomeOut(Schema):
    id = fields.Integer(metadata={"description": "the contact's id (a touch)"})
    patient = fields.String(allow_none=True, metadata={"description": "the patient's external id"})
    appointment = fields.String(allow_none=True, metadata={"description": "the appointment's external id"})
    prescription = fields.String(allow_none=True)
    step = fields.String()
    channel = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    result = fields.String(allow_none=True, metadata={"description": "what the patient did: confirmed, "
                                                                     "cancelled, ..., or none"})
    appointment_status = fields.String(allow_none=True, metadata={"description": "the appointment's status now"})
    updated_at = fields.AwareDateTime()


class OutcomePage(Schema):
    items = fields.List(fields.Nested(OutcomeOut))
    next_cursor = fields.String(allow_none=True)


class TaskOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String()
    patient = fields.String(allow_none=True)
    appointment = fields.String(allow_none=True)
    prescription = fields.String(allow_none=True)
    due_at = fields.AwareDateTime()
    created_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime(allow_none=True)


class TaskPage(Schema):
    items = fields.List(fields.Nested(TaskOut))
    next_cursor = fields.String(allow_none=True)


class CallOut(Schema):
    id = fields.Integer()
    direction = fields.String(metadata={"description": "inbound or outbound-api"})
    flow = fields.String()
    status = fields.String()
    outcome = fields.String(allow_none=True, metadata={"description": "confirmed, cancelled, voicemail, ..."})
    answered_by = fields.String(allow_none=True)
    patient = fields.String(allow_none=True, metadata={"description": "the patient's external id, once known"})
    appointment = fields.String(allow_none=True)
    contact = fields.Integer(allow_none=True, metadata={"description": "the planned contact it carried out "
                                                                      "(an /outcomes id)"})
    created_at = fields.AwareDateTime()
    ended_at = fields.AwareDateTime(allow_none=True)


class CallPage(Schema):
    items = fields.List(fields.Nested(CallOut))
    next_cursor = fields.String(allow_none=True)


class MessageOut(Schema):
    id = fields.Integer()
    direction = fields.String()
    kind = fields.String(metadata={"description": "reminder, reply, confirmation, opt_out, text_back, ..."})
    status = fields.String()
    segments = fields.Integer()
    patient = fields.String(allow_none=True)
    appointment = fields.String(allow_none=True)
    contact = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class MessagePage(Schema):
    items = fields.List(fields.Nested(MessageOut))
    next_cursor = fields.String(allow_none=True)
