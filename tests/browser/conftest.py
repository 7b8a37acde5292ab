"""The browser tests' shared fixtures (shop.py): Chromium, and the server over the demo catalogue. Declared here
so that pytest finds them for every module, instead of each module importing them by a name that linters see as
unused (and remove)."""

from shop import base_url, browser  # noqa: F401 - fixtures
