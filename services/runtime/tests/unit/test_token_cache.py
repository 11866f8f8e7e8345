"""A token verified once is remembered until it expires, and then refused without a second look."""

from __future__ import annotations

import time

import pytest

from ejsika_runtime.auth import TokenVerifier
from ejsika_runtime.problems import Problem
from ejsika_runtime.testing import ISSUER, LocalIdentity


class CountingKeys(LocalIdentity):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def get_signing_key_from_jwt(self, encoded: str):
        self.lookups += 1
        return super().get_signing_key_from_jwt(encoded)


def verifier(keys: CountingKeys, now: list[float]) -> TokenVerifier:
    checker = TokenVerifier(ISSUER, "ejsika", None, ["RS256"], leeway_s=30, clock=lambda: now[0])
    checker._keys = keys
    return checker


async def test_a_token_is_checked_once_and_served_from_memory_until_it_expires():
    keys, now = CountingKeys(), [time.time()]
    checker = verifier(keys, now)
    token = keys.token("operator", programme="jscm", exp=int(now[0]) + 300)
    first = await checker.verify(f"Bearer {token}")
    again = await checker.verify(f"Bearer {token}")
    assert first == again and first.programme == "jscm"
    assert keys.lookups == 1, "the signature is checked once"

    now[0] += 300 + 30 + 1  # past exp and the leeway
    with pytest.raises(Problem) as refused:
        await checker.verify(f"Bearer {token}")
    assert refused.value.status == 401 and "expired" in refused.value.detail
    assert keys.lookups == 1, "refused from memory"


async def test_a_forged_token_is_never_remembered_and_the_memory_is_bounded():
    keys, now = CountingKeys(), [time.time()]
    checker = verifier(keys, now)
    forged = LocalIdentity().token("admin")  # same kid, another key
    for _ in range(2):
        with pytest.raises(Problem):
            await checker.verify(f"Bearer {forged}")
    assert keys.lookups == 2, "a refused token is checked every time"

    checker.CACHE_SIZE = 3
    tokens = [keys.token("auditor", sub=f"user-{i}") for i in range(5)]
    for token in tokens:
        await checker.verify(f"Bearer {token}")
    assert list(checker._verified) == tokens[2:], "the least recently used go first"
