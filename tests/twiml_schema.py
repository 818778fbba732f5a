"""The TwiML verbs, nesting and attributes Twilio documents, for checking what we produce."""

from __future__ import annotations

import xml.etree.ElementTree as ET

SAY = {"voice", "language", "loop"}
PLAY = {"loop", "digits"}
PAUSE = {"length"}
GATHER = {"action", "method", "input", "numDigits", "timeout", "finishOnKey", "speechTimeout",
          "language", "hints", "profanityFilter", "speechModel", "enhanced", "actionOnEmptyResult",
          "partialResultCallback", "partialResultCallbackMethod", "bargeIn", "debug"}
RECORD = {"action", "method", "timeout", "finishOnKey", "maxLength", "playBeep", "trim",
          "recordingStatusCallback", "recordingStatusCallbackMethod",
          "recordingStatusCallbackEvent", "transcribe", "transcribeCallback"}
DIAL = {"action", "method", "timeout", "hangupOnStar", "timeLimit", "callerId", "record", "trim",
        "recordingStatusCallback", "recordingStatusCallbackMethod", "recordingStatusCallbackEvent",
        "answerOnBridge", "ringTone", "sequential", "referUrl", "referMethod"}
NUMBER = {"sendDigits", "url", "method", "statusCallbackEvent", "statusCallback",
          "statusCallbackMethod", "byoc", "machineDetection"}
REDIRECT = {"method"}
ENQUEUE = {"action", "method", "waitUrl", "waitUrlMethod", "workflowSid", "maxQueueSize"}
QUEUE = {"url", "method", "reservationSid", "postWorkActivitySid"}

# verb -> (allowed attributes, allowed children or None for text content)
VERBS = {
    "Say": (SAY, None), "Play": (PLAY, None), "Pause": (PAUSE, ()),
    "Gather": (GATHER, ("Say", "Play", "Pause")),
    "Record": (RECORD, ()), "Dial": (DIAL, ("Number", "Queue", "Client", "Sip", "Conference")),
    "Number": (NUMBER, None), "Queue": (QUEUE, None), "Redirect": (REDIRECT, None),
    "Hangup": (set(), ()), "Reject": ({"reason"}, ()), "Enqueue": (ENQUEUE, None),
    "Leave": (set(), ()),
}
TOP_LEVEL = {"Say", "Play", "Pause", "Gather", "Record", "Dial", "Redirect", "Hangup", "Reject",
             "Enqueue", "Leave"}
# After these nothing else in the document runs.
TERMINAL = {"Hangup", "Reject", "Redirect"}


def problems(xml: str | bytes) -> list[str]:
    """Everything wrong with a TwiML voice document; empty when it is valid."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return [f"not XML: {exc}"]
    if root.tag != "Response":
        return [f"root element is {root.tag}, not Response"]
    found: list[str] = []
    children = list(root)
    for index, child in enumerate(children):
        if child.tag not in TOP_LEVEL:
            found.append(f"<{child.tag}> is not allowed in <Response>")
        if child.tag in TERMINAL and index != len(children) - 1:
            found.append(f"<{child.tag}> is followed by verbs that never run")
        found.extend(_check(child))
    return found


def _check(element) -> list[str]:
    attrs, allowed_children = VERBS.get(element.tag, (None, None))
    if attrs is None:
        return [f"unknown verb <{element.tag}>"]
    found = [f"<{element.tag}> has unknown attribute {name!r}" for name in element.attrib
             if name not in attrs]
    for child in element:
        if allowed_children is None or child.tag not in allowed_children:
            found.append(f"<{child.tag}> may not be nested in <{element.tag}>")
        found.extend(_check(child))
    if allowed_children is None and not (element.text or "").strip() and element.tag != "Enqueue":
        found.append(f"<{element.tag}> needs text content")
    return found


def assert_valid(xml: str | bytes) -> None:
    """Fail with the list of problems when the TwiML is not valid."""
    found = problems(xml)
    assert not found, "invalid TwiML:\n" + "\n".join(found)
