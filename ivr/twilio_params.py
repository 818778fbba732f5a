"""The POST parameter names Twilio documents for each kind of voice request, per route.

Why: X-Twilio-Signature is an HMAC over the URL followed by every name and value run together
with no separator, so a captured request can be replayed with characters moved across a
name/value boundary and keep its signature (`AnsweredBy=machine_start` re-split as
`AnsweredB=ymachine_start` turns an answering machine into a person). A route accepts only the
names Twilio sends it, each once. That alone does not close every shift: a whole parameter can be
folded into the value before it (`AccountSid=AC...AnsweredBymachine_start`). So the values we read
are checked too: AccountSid must be ours (ivr/security.py), CallSid, Digits, AnsweredBy, statuses
and RecordingSid must match their formats (ivr/webhooks.py), From and To are stored only when they
are phone numbers, and every answer carries its turn number, so a replay is stale anyway.

Sources (checked 2026-12): twilio.com/docs/usage/webhooks/voice-webhooks, the TwiML pages of
<Gather>, <Record>, <Dial>, <Number> and <Enqueue>, the Call resource's StatusCallback section,
answering machine detection, and Trusted Calling with SHAKEN/STIR; names marked "seen" were
found only in real requests Twilio sent. Twilio says it may add parameters without notice: an
unknown name is logged by name (never value) and, unless IVR_TWILIO_UNKNOWN_PARAMS=log, refused.
"""

from __future__ import annotations

# Every voice request (the answer URL, each action URL, status callbacks).
COMMON = frozenset({
    "AccountSid", "ApiVersion", "CallSid", "CallStatus", "CallToken", "CallerName", "Direction",
    "ForwardedFrom", "From", "FromCity", "FromCountry", "FromState", "FromZip", "ParentCallSid",
    "To", "ToCity", "ToCountry", "ToState", "ToZip", "Called", "CalledCity", "CalledCountry",
    "CalledState", "CalledZip", "Caller", "CallerCity", "CallerCountry", "CallerState", "CallerZip",
    "StirPassportToken", "StirVerstat",
    "ApplicationSid", "CalledVia",  # seen
    "AddOns",  # Marketplace add-ons on incoming calls (spam scores and the like)
})
# Calls that arrive through a Twilio SIP Domain (a clinic's phone system may route them so).
SIP = frozenset({"SipCallId", "SipDomain", "SipDomainSid", "SipSourceIp", "SipUsername"})
MACHINE_DETECTION = frozenset({"AnsweredBy", "MachineDetectionDuration"})
GATHER = frozenset({"Confidence", "Digits", "SpeechResult", "FinishedOnKey", "msg"})  # the last two: seen
RECORD = frozenset({"Digits", "RecordingDuration", "RecordingUrl", "RecordingSid"})  # RecordingSid: seen
DIAL = frozenset({"DialBridged", "DialCallDuration", "DialCallSid", "DialCallStatus", "RecordingUrl",
                  "DequeingCallSid", "QueueSid", "QueueTime", "DialSipCallId", "DialSipResponseCode"})
# The queue's wait URL (and a Gather inside it), and its action URL when the caller leaves.
QUEUE_WAIT = frozenset({"QueuePosition", "QueueSid", "QueueTime", "AvgQueueTime", "CurrentQueueSize",
                        "MaxQueueSize"})
QUEUE_ACTION = frozenset({"QueueResult", "QueueSid", "QueueTime"})
STATUS = frozenset({"CallDuration", "CallbackSource", "Duration", "RecordingDuration", "RecordingSid",
                    "RecordingUrl", "SequenceNumber", "SipResponseCode", "StirStatus", "Timestamp",
                    "AnsweredBy", "MachineDetectionDuration"})
# Twilio's fallback URL: the error it met and the URL that failed.
FALLBACK = frozenset({"ErrorCode", "ErrorUrl"})
# Texts (Messaging webhooks: incoming message, and the StatusCallback of one we sent).
SMS_COMMON = frozenset({"AccountSid", "ApiVersion", "MessageSid", "SmsSid", "SmsMessageSid", "SmsStatus",
                        "MessagingServiceSid", "From", "To", "FromCity", "FromState", "FromZip",
                        "FromCountry", "ToCity", "ToState", "ToZip", "ToCountry", "AddOns"})
SMS_INBOUND = SMS_COMMON | {"Body", "NumMedia", "NumSegments", "OptOutType", "ReferralNumMedia"}
SMS_STATUS = SMS_COMMON | {"MessageStatus", "ErrorCode", "ErrorMessage", "RawDlrDoneDate", "ChannelToAddress",
                           "ChannelPrefix", "ChannelInstallSid", "StructuredMessage"}
# Names that carry a SIP header's or an application's own name after the prefix, and the
# numbered media of a picture message.
PREFIXES = ("SipHeader_", "DialSipHeader_", "MediaUrl", "MediaContentType")

# Endpoint -> the names its requests may carry. A Redirect after a question posts the common set
# to the step route, which is also every question's <Gather> and <Record> action. The answering
# machine verdict may travel on every request of a call that was screened (harmless where we do
# not read it; what matters is that no other name can end in its letters).
CALL = COMMON | SIP | MACHINE_DETECTION
ROUTES: dict[str, frozenset[str]] = {
    "twilio.outbound_answer": CALL,
    "twilio.inbound_answer": CALL,
    "twilio.voice_step": CALL | GATHER | RECORD,
    "twilio.dial_result": CALL | DIAL,
    "twilio.failover_dial_result": CALL | DIAL,
    # The fallback URL gets what the failed request carried, and what went wrong.
    "twilio.voice_fallback": CALL | GATHER | RECORD | DIAL | QUEUE_WAIT | QUEUE_ACTION | FALLBACK,
    "twilio.whisper": CALL,
    "twilio.whisper_answer": CALL | GATHER,
    "twilio.callback_answer": CALL,
    "twilio.callback_accept": CALL | GATHER,
    "twilio.callback_result": CALL | DIAL,
    "twilio.callback_status": CALL | STATUS,
    "twilio.status_callback": CALL | STATUS,
    "twilio.queue_wait": CALL | QUEUE_WAIT,
    "twilio.queue_key": CALL | GATHER | QUEUE_WAIT,
    "twilio.queue_left": CALL | QUEUE_ACTION,
    "twilio.queue_staff": CALL,
    "twilio.queue_staff_choice": CALL | GATHER,
    "twilio.queue_staff_status": CALL | STATUS,
    "twilio_sms.inbound": SMS_INBOUND,
    "twilio_sms.status": SMS_STATUS,
}


def unexpected(endpoint: str, names: list[str]) -> list[str]:
    """The names a request to this endpoint should not carry: unknown ones, and any repeated."""
    allowed = ROUTES.get(endpoint, COMMON)
    seen: set[str] = set()
    odd = []
    for name in names:
        if name in seen or (name not in allowed and not name.startswith(PREFIXES)):
            odd.append(name)
        seen.add(name)
    return sorted(set(odd))
