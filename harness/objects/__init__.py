"""Object-storage backups: a bucket copied to dated sets with a manifest, restored, verified."""
