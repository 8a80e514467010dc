"""Fingerprints of a database (data and catalog), their comparison, and RLS behaviour."""
