"""Recovery targets of the Cloudflare stack per environment (C8 of the backup guide).

The stack is backed up daily (D1) and weekly (R2, KV), so its recovery point objective is a
day in production, not the hour the PostgreSQL plan (P6) asks for. The environment profile
chosen with ``--drill-environment`` selects the row; ``--drill-rto`` / ``--drill-rpo`` or a
``[tool.drill.environments.<name>]`` table that changes the profile win, as they do for every
drill.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.config import HOUR, PROFILES, RecoveryTargets

CLOUDFLARE_PROFILES: Mapping[str, RecoveryTargets] = {
    "production": RecoveryTargets("production", 4 * HOUR, 24 * HOUR),
    "staging": RecoveryTargets("staging", 8 * HOUR, 48 * HOUR),
    "development": RecoveryTargets("development", 24 * HOUR, 7 * 24 * HOUR),
}


def cloudflare_targets(session: RecoveryTargets) -> RecoveryTargets:
    """The targets a Cloudflare drill uses, given the session's resolved targets.

    Args:
        session: the targets the session resolved (profile plus overrides).

    Returns:
        C8's row for the environment, unless the session's targets differ from the
        built-in profile (the user set them): then the session's.

    """
    default = PROFILES.get(session.environment)
    c8 = CLOUDFLARE_PROFILES.get(session.environment)
    if c8 is None or session != default:
        return session
    return c8
