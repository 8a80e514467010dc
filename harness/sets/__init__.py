"""Backup sets: take, check and restore them; what a production host runs."""
