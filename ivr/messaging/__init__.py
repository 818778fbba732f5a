"""Text messages: sending them (a job per message, never twice), the carrier's status callbacks,
texts patients send us (opt-out words, answers to a reminder, anything else for staff), and the
pure conversation flows that decide the replies (call_flows/texts.py)."""
