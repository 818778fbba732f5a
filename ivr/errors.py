"""Exceptions raised by the ivr package: everything derives from IvrError."""


class IvrError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(IvrError):
    """The configuration is missing a value or holds one that cannot work."""


class DialError(IvrError):
    """The carrier did not accept a call; worth retrying later."""


class PermanentDialError(DialError):
    """The carrier refused a call for a reason a retry cannot fix (bad number, bad account)."""


class UncertainDialError(DialError):
    """The carrier may or may not have placed the call (it timed out after we sent the request).
    Retrying could ring the patient twice, so the touch waits for a person or a reconciler."""


class CarrierError(IvrError):
    """The carrier could not tell us about a call (unreachable, refused, or no such call); asking
    again later is safe."""
