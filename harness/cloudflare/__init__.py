"""The Cloudflare stack: D1 (SQLite), Workers KV and R2, operated through ``wrangler``.

- :mod:`~harness.cloudflare.wrangler`: the pinned wrangler, run through
  :func:`harness.proc.run` (argv lists, the API token in the environment only, output
  redacted), locally or with ``--remote``.
- :mod:`~harness.cloudflare.d1` and :mod:`~harness.cloudflare.d1_export`: export, import
  into a fresh database, integrity check of an export without touching the source,
  fingerprints (schema, row counts, content hashes).
- :mod:`~harness.cloudflare.kv` and :mod:`~harness.cloudflare.kv_sets`: a Workers KV adapter
  of :class:`harness.kv.base.KvStore` that moves keys in bulk; backup to the shared JSON
  Lines export, restore, verification.
- :mod:`~harness.cloudflare.r2`, :mod:`~harness.cloudflare.r2_sets` and
  :mod:`~harness.cloudflare.bridge`: R2 buckets (local ones through a loopback Worker,
  remote ones through R2's S3 API), object backups in the S3 object-backup format,
  restores verified by SHA-256.
- :mod:`~harness.cloudflare.sets` and :mod:`~harness.cloudflare.stack`: dated sets in the
  object-backup manifest format, and the three stores backed up and restored at one date.
- :mod:`~harness.cloudflare.targets`: the stack's recovery targets per environment (C8).

Throwaway local projects (their ``wrangler.toml`` and state) are infrastructure:
:mod:`harness.infra.wrangler_project`. ``docs/cloudflare.md`` describes the whole.
"""
