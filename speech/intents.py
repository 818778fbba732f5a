"""What callers say, per language, mapped to the intents flows understand.

Each question asks for some intents; its grammar is the phrases of those intents. A recognised
phrase maps back to exactly one intent. Emergency phrases are listened for on every answer.
"""

from __future__ import annotations

from typing import Iterable

from speech.common import Recognition, SpeechError

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "yes": ("yes", "yeah", "yep", "correct", "confirm"),
        "no": ("no", "nope"),
        "cancel": ("cancel",),
        "reschedule": ("reschedule", "new time", "change it"),
        "repeat": ("repeat", "again", "say again"),
        "operator": ("operator", "agent", "person", "representative"),
        "stop": ("stop", "unsubscribe"),
        "refill": ("refill",),
        "appointment": ("appointment",),
        "emergency": ("emergency", "chest pain", "can't breathe", "suicide"),
        **{str(n): (w,) for n, w in enumerate(("zero", "one", "two", "three", "four", "five",
                                                "six", "seven", "eight", "nine"))},
    },
    "es": {
        "yes": ("sí", "claro", "correcto", "confirmo"),
        "no": ("no",),
        "cancel": ("cancelar",),
        "reschedule": ("otro horario", "cambiar"),
        "repeat": ("repetir", "otra vez"),
        "operator": ("operador", "agente", "persona"),
        "stop": ("basta", "alto", "ya no llamen"),
        "refill": ("resurtir", "receta"),
        "appointment": ("cita",),
        "emergency": ("emergencia", "dolor de pecho", "no puedo respirar", "suicidio"),
        **{str(n): (w,) for n, w in enumerate(("cero", "uno", "dos", "tres", "cuatro", "cinco",
                                                "seis", "siete", "ocho", "nueve"))},
    },
    "fr": {
        "yes": ("oui", "d'accord", "exact", "confirmer"),
        "no": ("non",),
        "cancel": ("annuler",),
        "reschedule": ("autre moment", "changer"),
        "repeat": ("répéter", "encore"),
        "operator": ("opérateur", "agent", "quelqu'un", "personne"),
        "stop": ("arrêter", "arrêtez", "stop"),
        "refill": ("renouveler", "ordonnance"),
        "appointment": ("rendez-vous",),
        "emergency": ("urgence", "douleur à la poitrine", "je ne peux pas respirer", "suicide"),
        **{str(n): (w,) for n, w in enumerate(("zéro", "un", "deux", "trois", "quatre", "cinq",
                                                "six", "sept", "huit", "neuf"))},
    },
    "ko": {
        "yes": ("네", "예", "응", "확인"),
        "no": ("아니요", "아니오", "아니"),
        "cancel": ("취소",),
        "reschedule": ("변경",),
        "repeat": ("반복", "다시"),
        "operator": ("상담원", "직원"),
        "stop": ("중지", "그만"),
        "refill": ("처방전", "처방", "리필"),
        "appointment": ("예약",),
        "emergency": ("응급", "응급상황", "구급차", "가슴 통증", "숨을 못 쉬어", "자살"),
        **{str(n): (w,) for n, w in enumerate(("영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"))},
    },
}


def phrases_for(language: str, intents: Iterable[str]) -> list[str]:
    """The grammar for a question that accepts these intents (plus emergency phrases)."""
    table = PHRASES.get(language)
    if table is None:
        raise SpeechError(f"no intent phrases for language {language!r}")
    wanted = list(dict.fromkeys([*intents, "emergency"]))
    missing = [i for i in wanted if i not in table and i != "emergency"]
    if missing:
        raise SpeechError(f"{language} has no phrases for intent(s): {', '.join(missing)}")
    return [p for intent in wanted for p in table.get(intent, ())]


# Acted on even when the engine was unsure: a missed emergency costs more than an unneeded
# "hang up and dial 9 1 1" and a transfer to staff.
TRUSTED_WHEN_UNSURE = frozenset({"emergency"})


def intent_of(language: str, recognition: Recognition, trust_unsure_emergency: bool = True) -> str | None:
    """The intent of the recognised phrase, or None when nothing usable was heard. A phrase the
    engine rejected as unsure counts only when it is an emergency, and not even then when the
    answer was expected to be something else entirely (a date: the best of a grammar it is not
    in is close to chance)."""
    intent = _intent(language, recognition.text)
    if intent is None and recognition.rejected and trust_unsure_emergency:
        unsure = _intent(language, recognition.rejected)
        intent = unsure if unsure in TRUSTED_WHEN_UNSURE else None
    return intent


def _intent(language: str, text: str) -> str | None:
    text = " ".join(text.split())
    for intent, phrases in PHRASES.get(language, {}).items():
        if text in phrases:
            return intent
    return None
