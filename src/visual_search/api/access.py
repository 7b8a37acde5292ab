"""Who may call a route: the three access levels and the one check both front ends apply (header X-API-Key).

- open: anyone (GET /health, the UI's configuration);
- read: searching and browsing; open while no read key is configured, else the read key or the write key;
- write: changing the catalogue, the duplicate report, the embedding route; refused (403 `writes_disabled`)
  while no write key is configured, since anyone who can reach the server could otherwise change the catalogue.
A wrong or missing key is 401 `unauthorized`. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum

from visual_search.core.errors import UnauthorizedError, VisualSearchError

API_KEY_HEADER = "X-API-Key"


class Access(Enum):
    OPEN = "open"
    READ = "read"
    WRITE = "write"


class WritesDisabledError(VisualSearchError):
    """A write route on a server with no write key: anyone could change the catalogue, so it refuses."""

    code = "writes_disabled"
    http_status = 403


@dataclass(frozen=True)
class AccessKeys:
    """The configured keys (None: not configured) and how an operator sets the write key on this front end."""

    read: str | None = None
    write: str | None = None
    how_to_set_write_key: str = "set VISUAL_SEARCH_WRITE_API_KEY"

    def check(self, access: Access, given: str | None) -> None:
        """Raises UnauthorizedError (401) or WritesDisabledError (403) unless `given` opens `access`."""
        if access is Access.OPEN:
            return
        if access is Access.READ:
            if self.read and not (_same(given, self.read) or (self.write and _same(given, self.write))):
                raise UnauthorizedError(f"a valid {API_KEY_HEADER} header is required")
            return
        if not self.write:
            raise WritesDisabledError(f"changing the catalogue needs a write key: {self.how_to_set_write_key}")
        if not _same(given, self.write):
            raise UnauthorizedError(f"a valid {API_KEY_HEADER} header is required")


def _same(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())
