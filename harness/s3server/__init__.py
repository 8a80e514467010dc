"""Throwaway S3-compatible servers: SeaweedFS and moto."""
