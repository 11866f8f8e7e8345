"""Re-encrypt every stored webhook secret with the primary key of EJSIKA_SECRETS_KEYS.

Rotating the key that encrypts the subscriptions' signing secrets:

1. Make a key: `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
2. Prepend it: EJSIKA_SECRETS_KEYS=<new>,<old>, and restart every replica: they now encrypt new
   secrets with <new> and still decrypt those made with <old>.
3. Run, with the same settings (EJSIKA_DATABASE_URL, EJSIKA_SECRETS_KEYS):

       python -m ejsika_notifications.rotate_secrets [--schema notifications]

   It re-encrypts every secret with <new> in one transaction (a secret that no key decrypts
   aborts it, and nothing changes) and prints how many it re-encrypted. A secret rotated out
   and still signing beside its successor is re-encrypted too; one past its grace is cleared.
4. Drop <old>: EJSIKA_SECRETS_KEYS=<new>, and restart the replicas.

Secrets still in clear (rows written before migration 004) are encrypted on the way.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from .crypto import SecretCipher, SecretsKeysError, UndecryptableSecret
from .demo import MIGRATIONS, SCHEMA
from .store.subscriptions import reencrypt_secrets


async def rotate_secrets(conn: asyncpg.Connection, cipher: SecretCipher) -> int:
    """Encrypt every stored secret again with `cipher`'s primary key; returns how many.

    `conn`'s search_path is the service schema. All or nothing: UndecryptableSecret if a secret
    cannot be decrypted by any of the keys.
    """
    return await reencrypt_secrets(conn, cipher)


async def _run(schema: str) -> int:
    from ejsika_runtime.db import create_pool, migrate

    from .settings import NotificationsSettings

    settings = NotificationsSettings()
    cipher = settings.secrets_cipher()
    pool = await create_pool(settings.database_url, schema, size=1)
    try:
        await migrate(pool, schema, MIGRATIONS)  # the secret_encrypted column exists
        async with pool.acquire() as conn:
            return await rotate_secrets(conn, cipher)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ejsika_notifications.rotate_secrets",
                                     description="Re-encrypt every webhook secret with the primary key.")
    parser.add_argument("--schema", default=SCHEMA, help=f"the service's schema (default {SCHEMA})")
    args = parser.parse_args(argv)
    try:
        count = asyncio.run(_run(args.schema))
    except (SecretsKeysError, UndecryptableSecret) as error:
        sys.exit(f"rotate_secrets: {error}")
    print(f"re-encrypted {count} webhook secrets with the primary key")


if __name__ == "__main__":
    main()
