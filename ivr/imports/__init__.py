"""Records brought in from files the clinic's systems export: CSV (and FHIR, to come)."""
