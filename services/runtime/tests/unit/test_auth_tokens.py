"""A renewing token is fetched once however many requests ask for it at the same moment."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jwt

from ejsika_runtime import auth_tokens


def test_parallel_callers_share_one_fetch(monkeypatch):
    fetches = []
    lock = threading.Lock()

    def fetch(*grant, **_):
        with lock:
            fetches.append(grant)
        time.sleep(0.05)  # a provider answering while other requests arrive
        now = int(time.time())
        return jwt.encode({"iat": now, "exp": now + 900}, "k" * 32, algorithm="HS256")

    monkeypatch.setattr(auth_tokens, "fetch_token", fetch)
    token = auth_tokens.RenewingToken("http://idp.test/realms/ejsika", "ejsika-tests", "s", "pendamping-demo", "p")
    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(lambda _: token(), range(16)))
    assert len(fetches) == 1 and len(tokens) == 1
