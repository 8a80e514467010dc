"""Verification: data and catalog fingerprints, comparison, row location, RLS."""
