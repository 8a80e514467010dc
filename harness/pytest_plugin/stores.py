"""Fixtures for the stores beside PostgreSQL: Redis servers, key-value stores, buckets.

Loaded by :mod:`harness.pytest_plugin.plugin` (``pytest_plugins``). Each drill gets Redis
servers of its own (a real ``redis-server``, started in well under a second), removed when
the drill ends; buckets come from ``object_store_factory`` as :class:`Bucket` views.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.errors import DrillError
from harness.infra.redis_server import RedisServer
from harness.kv.redis_store import RedisStore
from harness.objects.bucket import Bucket
from harness.pytest_plugin.fixtures import ObjectStoreFactory
from harness.pytest_plugin.report import DrillRecord

RedisServerFactory = Callable[..., RedisServer]
BucketFactory = Callable[..., Bucket]
_counter = itertools.count(1)


@pytest.fixture
def redis_server_factory(
    tmp_path_factory: pytest.TempPathFactory, drill_record: DrillRecord
) -> Iterator[RedisServerFactory]:
    """Start throwaway Redis servers for this drill: ``redis_server_factory(name="kv")``."""
    made: list[RedisServer] = []

    def make(name: str = "kv") -> RedisServer:
        workdir: Path = tmp_path_factory.mktemp(f"redis-{name}-{next(_counter)}")
        try:
            server = RedisServer(workdir)
            made.append(server)
            server.start()
        except DrillError as exc:
            pytest.fail(str(exc), pytrace=False)
        drill_record.add("Redis", server.version)
        return server

    yield make
    for server in made:
        server.remove()


@pytest.fixture
def redis_server(redis_server_factory: RedisServerFactory) -> RedisServer:
    """A throwaway Redis server for this drill."""
    return redis_server_factory("kv")


@pytest.fixture
def kv_store(redis_server: RedisServer) -> Iterator[RedisStore]:
    """Database 0 of this drill's Redis server, as a key-value store."""
    store = RedisStore(redis_server.target())
    yield store
    store.close()


@pytest.fixture
def bucket_factory(object_store_factory: ObjectStoreFactory) -> BucketFactory:
    """Make buckets for this drill as :class:`Bucket`: ``bucket_factory(object_lock=False)``."""

    def make(*, object_lock: bool = False) -> Bucket:
        store = object_store_factory(object_lock=object_lock)
        return Bucket(store.target, store.bucket)

    return make
