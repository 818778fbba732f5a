"""No-show recovery by text: "we missed you at your recent appointment; reply 1 to ask for a new
one", then the patient's answer. The text names only the clinic (no date, no name: it may reach a
shared phone). A 1 opens a rebooking task for the office, and the reply says who will call and
when; anything else is passed to staff (call_flows/text_offer.py)."""

from __future__ import annotations

from call_flows.text_offer import Offer

OFFER = Offer(name="no-show", subject="appointment", text="sms.no_show", taken="sms.no_show_rebook_noted",
              changed="sms.changed_meanwhile", task="rebook_request", words=frozenset({"1"}),
              sent="no_show_text_sent", take="rebook", taken_outcome="rebook_requested",
              changed_outcome="appointment_changed")
start, advance, accepts = OFFER.start, OFFER.advance, OFFER.accepts
