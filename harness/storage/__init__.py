"""Object stores: S3 over HTTP and a local directory."""
