"""Exceptions raised by the ivr package: everything derives from IvrError."""


class IvrError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(IvrError):
    """The configuration is missing a value or holds one that cannot work."""


class DialError(IvrError):
    """The carrier did not accept a call; worth retrying later."""


class PermanentDialError(DialError):
    """The carrier refused a call for a reason a retry cannot fix (bad number, bad account)."""


class SendError(IvrError):
    """The carrier did not accept a text; worth retrying later."""


class PermanentSendError(SendError):
    """The carrier refused a text for good; `code` is its error code (21610: the number opted
    out at the carrier; 21614: not a mobile number; 21211: not a valid number)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class UncertainSendError(SendError):
    """The carrier may or may not have taken the text (no answer after sending): not retried."""


class UncertainDialError(DialError):
    """The carrier may or may not have placed the call (it timed out after we sent the request).
    Retrying could ring the patient twice, so the touch waits for a person or a reconciler."""


class ConcurrentChange(IvrError):
    """A row changed between our read and our write (a duplicate answer, staff editing the
    appointment): the transaction is rolled back and the turn is run again on what is there now."""


class RecordingError(IvrError):
    """A caller's recording could not be fetched from, or deleted at, the carrier."""


class CarrierError(IvrError):
    """The carrier could not tell us about a call (unreachable, refused, or no such call); asking
    again later is safe."""


class UnknownToCarrier(CarrierError):
    """The carrier has no such call (404): asking again will not change that."""
