"""The probability a Whisper answer needs to be accepted, per question.

A question is named by the intents it listens for (emergency aside). Each threshold was chosen by
`bench/speech.py` on the development clips in ../shared/speech (telephone audio, 8 kHz
mu-law), with speaker-grouped cross-validation: the figures the README quotes are those of the
held-out speakers, never of the speakers a threshold was fitted on. The threshold printed for the
whole set is the one kept here. A question without its own entry takes its model's default.
"""

from __future__ import annotations

DIGITS = frozenset(str(n) for n in range(10))
YES_NO_STOP = frozenset({"yes", "no", "stop"})

# (model, language, intents) -> threshold, as bench/speech.py printed them ("fitted on every clip";
# the false accepts allowed while fitting: 2% of the clips the question must reject).
FITTED: dict[tuple[str, str, frozenset[str]], float] = {
    ("tiny.en", "en", YES_NO_STOP): 0.10,
    ("tiny.en", "en", DIGITS): 0.30,
    # The reminder call's questions, with the digits of their keys (call_flows/reminder.py).
    ("tiny.en", "en", frozenset({"yes", "no", "stop", "1", "2"})): 0.10,              # identify, confirm_stop
    ("tiny.en", "en", frozenset({"yes", "cancel", "reschedule", "repeat", "stop",
                                 "1", "2", "3", "9"})): 0.07,                        # menu
    ("tiny.en", "en", frozenset({"yes", "cancel", "no", "stop", "1", "2"})): 0.10,    # confirm_cancel
}
# Questions with no entry of their own: the yes/no/stop threshold of the same model.
DEFAULT: dict[tuple[str, str], float] = {
    ("tiny.en", "en"): 0.10,
}
# Spanish, French and Korean (base): no real recordings to fit on. On espeak-ng's phrases every
# other word scored under 0.15 and most answers over 0.5 (bench/speech.py).
FALLBACK = 0.25
# An emergency phrase is acted on at a lower probability than other answers: a missed emergency
# costs more than an unneeded offer of help.
EMERGENCY = frozenset({"emergency"})


def threshold_for(model: str, language: str, intents: frozenset[str]) -> float:
    """The threshold for a question (its intents, emergency aside) in a language and model."""
    if intents == EMERGENCY:
        return 0.5 * threshold_for(model, language, YES_NO_STOP)
    fitted = FITTED.get((model, language, intents))
    if fitted is not None:
        return fitted
    if intents and intents <= DIGITS and (model, language, DIGITS) in FITTED:
        return FITTED[model, language, DIGITS]
    return DEFAULT.get((model, language), FALLBACK)
