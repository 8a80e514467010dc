"""S3-compatible servers the harness starts itself (SeaweedFS, moto)."""
