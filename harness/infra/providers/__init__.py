"""Infrastructure providers: embedded (default), docker, external, compose."""

from __future__ import annotations

from pathlib import Path

from harness.config import DrillConfig
from harness.infra.providers.base import Fact, PgServer, Provider
from harness.infra.providers.compose import ComposeProvider
from harness.infra.providers.docker import DockerProvider
from harness.infra.providers.embedded import EmbeddedProvider
from harness.infra.providers.external import ExternalProvider

__all__ = [
    "ComposeProvider",
    "DockerProvider",
    "EmbeddedProvider",
    "ExternalProvider",
    "Fact",
    "PgServer",
    "Provider",
    "make_provider",
]


def make_provider(config: DrillConfig, *, base_dir: Path) -> Provider:
    """Build the provider ``config.provider`` names.

    Raises:
        ProviderUnavailable: the provider cannot run here (e.g. docker without an engine).
        ConfigError: its required options are missing (e.g. external without a DSN).

    """
    if config.provider == "docker":
        return DockerProvider(config)
    if config.provider == "external":
        return ExternalProvider(config, base_dir=base_dir)
    if config.provider == "compose":
        return ComposeProvider(config, base_dir=base_dir)
    return EmbeddedProvider(config, base_dir=base_dir)
