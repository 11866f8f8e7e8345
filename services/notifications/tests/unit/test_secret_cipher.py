"""Webhook secrets encrypted at rest: MultiFernet keys, the first encrypting, all decrypting."""

import pytest

from ejsika_notifications.crypto import SecretCipher, SecretsKeysError, UndecryptableSecret, new_key
from ejsika_notifications.domain.subscriptions import SECRET_PREFIX, new_secret


def test_a_secret_comes_back_from_its_token_which_does_not_show_it():
    cipher = SecretCipher([new_key()])
    secret = new_secret()
    token = cipher.encrypt(secret)
    assert cipher.decrypt(token) == secret
    assert secret.encode() not in token and secret[len(SECRET_PREFIX):].encode() not in token
    assert cipher.encrypt(secret) != token, "each encryption has its own IV"


def test_rotation_moves_secrets_to_the_new_key_so_the_old_one_can_go():
    old, new = new_key(), new_key()
    secret = new_secret()
    token = SecretCipher([old]).encrypt(secret)
    during = SecretCipher.from_setting(f"{new},{old}")  # the new key prepended
    assert during.decrypt(token) == secret, "old tokens still decrypt during the rotation"
    rotated = during.rotate(token)
    after = SecretCipher.from_setting(new)  # the old key dropped
    assert after.decrypt(rotated) == secret
    with pytest.raises(UndecryptableSecret) as lost:
        after.decrypt(token)
    assert secret not in str(lost.value)


def test_new_secrets_are_encrypted_with_the_first_key():
    first, second = new_key(), new_key()
    token = SecretCipher([first, second]).encrypt("whsec_x")
    assert SecretCipher([first]).decrypt(token) == "whsec_x"
    with pytest.raises(UndecryptableSecret):
        SecretCipher([second]).decrypt(token)


@pytest.mark.parametrize("setting, message", [
    ("", "holds no key"),
    (" , ", "holds no key"),
    ("c2hvcnQ=", "key 1 of 1 is not a Fernet key"),
])
def test_unusable_key_settings_are_refused(setting, message):
    with pytest.raises(SecretsKeysError, match=message):
        SecretCipher.from_setting(setting)
