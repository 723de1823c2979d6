"""Sharing: the formats heistwatch exchanges with other tools (STIX 2.1 now; TAXII, MISP, Navigator next)."""
