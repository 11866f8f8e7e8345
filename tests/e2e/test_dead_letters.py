"""A malformed message ends in the dead-letter topic with its reason; the consumer goes on."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

from aiokafka import AIOKafkaProducer

from ejsika_contracts import HOUSEHOLD
from ejsika_runtime.dead_letter_tool import read
from ejsika_runtime.demo.synthetic import Families

from .conftest import Platform, eventually


async def produce(bootstrap: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(HOUSEHOLD.name, value, key=key)
    finally:
        await producer.stop()


async def dead_letters(bootstrap: str) -> list:
    return [letter async for letter in read(bootstrap, HOUSEHOLD.name)]


def test_malformed_event_is_dead_lettered_and_the_partition_moves_on(platform: Platform):
    bootstrap = platform.env["EJSIKA_KAFKA_BOOTSTRAP"]
    poison = b'{"type": "household.registered", "dataversion": 1, "data": {"nik": "3672011203800001"}}'
    key = str(uuid.uuid4()).encode()
    asyncio.run(produce(bootstrap, key, poison))
    asyncio.run(produce(bootstrap, key, b"\xff not json at all"))

    body = Families(seed=404).registration()
    response = platform.client("registry").post("/households", json=body, timeout=10)
    household = response.json()["household_id"]
    eventually(lambda: platform.client("registry").get(f"/households/{household}").json()["status"] != "registered")

    letters = eventually(lambda: [l for l in asyncio.run(dead_letters(bootstrap)) if l.key == key], timeout=30)
    by_group = {(l.facts["group"], l.value) for l in letters}
    for group in ("eligibility", "monitoring"):
        assert (group, poison) in by_group and (group, b"\xff not json at all") in by_group
    for letter in letters:
        assert letter.facts["reason"] == "invalid"
        assert letter.facts["topic"] == HOUSEHOLD.name
        assert "3672011203800001" not in letter.facts["error"], "the reason must not repeat personal data"
    assert "validation error" in letters[0].facts["error"]

    listing = subprocess.run([sys.executable, "-m", "ejsika_runtime.cli", "dead-letters", "list", HOUSEHOLD.name],
                             env=platform.env, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert "reason=invalid" in listing.stdout


def test_replayed_dead_letters_reach_their_consumers_again(platform: Platform):
    bootstrap = platform.env["EJSIKA_KAFKA_BOOTSTRAP"]
    key = str(uuid.uuid4()).encode()
    asyncio.run(produce(bootstrap, key, b"still not an event"))
    first = eventually(lambda: [l for l in asyncio.run(dead_letters(bootstrap)) if l.key == key], timeout=30)
    letter = first[0]

    replay = subprocess.run(
        [sys.executable, "-m", "ejsika_runtime.cli", "dead-letters", "replay", HOUSEHOLD.name,
         f"{letter.partition}:{letter.offset}"],
        env=platform.env, capture_output=True, text=True, timeout=60,
    )
    assert replay.returncode == 0, replay.stderr
    assert "replayed 1 dead letter(s)" in replay.stdout

    # The group whose letter it was reads the replayed record again (the other passes it over); still
    # invalid, it is dead-lettered again, now marked as coming back from the letter that was replayed.
    again = eventually(lambda: [l for l in asyncio.run(dead_letters(bootstrap))
                                if l.key == key and l.replayed_from], timeout=30)
    assert {l.replayed_from for l in again} == {f"{letter.partition}:{letter.offset}"}
    assert all(l.value == b"still not an event" for l in again)
