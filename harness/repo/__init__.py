"""Code repository backups: git mirrors archived with their SHA-256 and refs."""
