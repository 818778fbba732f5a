"""Refill prompt by text: "a prescription of yours is due for a refill; reply 1 to ask for it",
then the patient's answer. The text names the clinic only, never the medication: a text may reach
a shared or lost phone, and nobody proved who holds it. A 1, or the word for a refill in the
patient's language, opens a refill task for the pharmacy team and the reply says when they will
look at it; a refill filled or stopped since the text went is not asked for again (the patient
is asked to call); anything else is passed to staff (call_flows/text_offer.py)."""

from __future__ import annotations

from call_flows.text_offer import Offer

OFFER = Offer(name="refill", subject="prescription", text="sms.refill", taken="sms.refill_noted",
              changed="sms.refill_changed", task="refill_request", words=frozenset({"1", "refill"}),
              sent="refill_text_sent", take="refill", taken_outcome="refill_requested",
              changed_outcome="prescription_changed")
start, advance, accepts = OFFER.start, OFFER.advance, OFFER.accepts
