"""The service's request ids: the key of each answer in the prediction log. The service makes them (a client can
neither choose one nor guess another's: 64 random bits each) and signs them, so any worker or replica holding the
key tells an id it issued, and how many records that request held, before the log has written the request."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

ID = re.compile(r"^([0-9a-f]{12})-([0-9a-f]{16})-([0-9a-f]{1,6})-([0-9a-f]{16})$")
"""<milliseconds since the epoch>-<random>-<records>-<signature>, all hex: 47 to 52 characters, which fit the log's
key column and feedback's id rule; the time first keeps the log's index appended in order."""
DERIVATION = b"mltemplate request id v1"


def derive_key(secret: bytes) -> bytes:
    """The signing key for a shared secret (the feedback credentials): a key of its own, not the secret itself."""
    return hmac.new(secret, DERIVATION, hashlib.sha256).digest()


class RequestIds:
    """Issues and recognises this service's ids; every worker built from the same key agrees."""

    def __init__(self, key: bytes | None = None) -> None:
        # Without a shared key (no feedback credentials, so no /feedback) a worker's own random key will do.
        self.key = key if key is not None else secrets.token_bytes(32)

    def _sign(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()[:16]

    def issue(self, records: int, *, now: float | None = None) -> str:
        """A new id for an answer of `records` records."""
        if not 1 <= records < 16**6:
            raise ValueError(f"a request holds 1 to {16**6 - 1} records, not {records}")
        millis = int((time.time() if now is None else now) * 1000)
        body = f"{millis:012x}-{secrets.token_hex(8)}-{records:x}"
        return f"{body}-{self._sign(body)}"

    def records(self, request_id: str) -> int | None:
        """How many records the request held, if this key issued `request_id`; None if it did not."""
        found = ID.match(request_id)
        if found is None:
            return None
        body = request_id.rsplit("-", 1)[0]
        if not hmac.compare_digest(self._sign(body), found[4]):
            return None
        return int(found[3], 16)
