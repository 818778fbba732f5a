"""The inbound line's shell: when the clinic is open, and the messages callers leave."""
