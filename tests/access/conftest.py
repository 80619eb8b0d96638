from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The personas' passwords are hashed on every test; the production hasher's cost buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# portal/settings.py's development default key decodes to 34 bytes, which Fernet refuses; tests use a valid one
# until that is fixed (reported to the lead).
TEST_KEY = "ZGV2ZWxvcG1lbnQta2V5LWRvLW5vdC11c2UtaW4tcHI="


@pytest.fixture(autouse=True)
def valid_encryption_key(settings):
    from cryptography.fernet import Fernet

    from apps.core import fields

    try:
        for key in settings.FIELD_ENCRYPTION_KEYS:
            Fernet(key.encode())
    except ValueError:
        settings.FIELD_ENCRYPTION_KEYS = [TEST_KEY]
    fields._fernet.cache_clear()
    yield
    fields._fernet.cache_clear()
