"""What a patient's text means: the carriers' own opt-out, opt-in and help words (which Twilio
and the networks act on before we see them), the same in the patient's language (which nobody
acts on but us), and the answers a reminder asks for.

Carriers match a keyword only when it is the whole message (spaces and case aside); so do we.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# The networks opt a number out on these, and back in on these; Twilio answers them itself.
CARRIER_OPT_OUT = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"})
CARRIER_OPT_IN = frozenset({"start", "unstop", "yes"})
CARRIER_HELP = frozenset({"help", "info"})
# The same in our patients' languages: we honour them and confirm them ourselves.
OUR_OPT_OUT = frozenset({"alto", "parar", "baja", "arret", "desabonner", "desinscrire", "중지", "수신거부",
                         "opt out", "opt-out", "stop all", "stop texting", "stop texting me", "unsubscribe me"})
OUR_HELP = frozenset({"ayuda", "aide", "도움말", "도움"})
# Answers to a reminder, by language (a digit's meaning depends on the question: the flow's).
ANSWERS: dict[str, dict[str, str]] = {
    "en": {"c": "confirm", "confirm": "confirm", "r": "reschedule", "x": "cancel", "refill": "refill"},
    "es": {"c": "confirm", "confirmar": "confirm", "confirmo": "confirm", "r": "reschedule", "x": "cancel",
           "resurtir": "refill", "receta": "refill"},
    "fr": {"c": "confirm", "confirmer": "confirm", "confirme": "confirm", "r": "reschedule", "x": "cancel",
           "renouveler": "refill", "renouvellement": "refill"},
    "ko": {"c": "confirm", "확인": "confirm", "r": "reschedule", "변경": "reschedule", "x": "cancel",
           "취소": "cancel", "리필": "refill", "재처방": "refill"},
}
DIGITS = frozenset("123")
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")


@dataclass(frozen=True)
class Meaning:
    """What a text is: opt_out, opt_in, help or answer; who acted on it already (the carrier, for
    its own words); and for an answer, its intent (None when nothing matched)."""

    kind: str
    by_carrier: bool = False
    intent: str | None = None


def normalise(body: str) -> str:
    """The words as compared: accents folded, case folded, spaces and edge punctuation trimmed."""
    decomposed = unicodedata.normalize("NFKD", body)
    folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _EDGES.sub("", unicodedata.normalize("NFC", folded).casefold().strip())


def meaning(body: str, language: str) -> Meaning:
    """What a patient's text means in their language."""
    word = normalise(body)
    if word in CARRIER_OPT_OUT:
        return Meaning("opt_out", by_carrier=True)
    if word in OUR_OPT_OUT:
        return Meaning("opt_out")
    if word in CARRIER_OPT_IN:
        return Meaning("opt_in", by_carrier=True)
    if word in CARRIER_HELP or word in OUR_HELP:
        return Meaning("help", by_carrier=word in CARRIER_HELP)
    if word in DIGITS:
        return Meaning("answer", intent=word)
    return Meaning("answer", intent=ANSWERS.get(language, ANSWERS["en"]).get(word))
