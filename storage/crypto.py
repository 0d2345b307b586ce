"""PHI encryption at rest (Fernet/MultiFernet) and keyed blind indexes for lookups."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class PHICipherError(Exception):
    """A PHI field could not be decrypted with any configured key."""


class PHICipher:
    """Encrypts with the newest key, decrypts with any; rotation = prepend a new key."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
        # One blind-index key per encryption key: new rows are indexed with the newest; lookups
        # try every configured key, so rows written before a rotation are still found until
        # `prescreen-bot keys rotate` re-indexes them.
        self._index_keys = [hashlib.sha256(b"prescreen-blind-index:" + k.encode()).digest()
                            for k in keys]

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def encrypt_optional(self, value: str | None) -> str | None:
        return None if value is None else self.encrypt(value)

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise PHICipherError("PHI field cannot be decrypted with the configured keys") from exc

    def decrypt_optional(self, token: str | None) -> str | None:
        return None if token is None else self.decrypt(token)

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def index(self, *parts: str) -> str:
        """Deterministic keyed hash of normalised parts (newest key), stored for equality lookups."""
        return self._index_with(self._index_keys[0], parts)

    def indexes(self, *parts: str) -> list[str]:
        """The index of `parts` under every configured key: what a lookup must match."""
        return [self._index_with(k, parts) for k in self._index_keys]

    @staticmethod
    def _index_with(key: bytes, parts: tuple[str, ...]) -> str:
        norm = "\x1f".join(normalise(p) for p in parts)
        return hmac.new(key, norm.encode("utf-8"), hashlib.sha256).hexdigest()


def normalise(value: str) -> str:
    value = unicodedata.normalize("NFKC", value).casefold()
    return " ".join(value.split())
