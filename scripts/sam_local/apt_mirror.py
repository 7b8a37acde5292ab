"""Prints the Debian archive mirror this machine's apt sources use, for debootstrap (build-base-image.sh).

apt reads /etc/apt/sources.list and the *.list (one-line) and *.sources (deb822) files of
/etc/apt/sources.list.d; other names there (e.g. "*.disabled") are ignored, and so are they here. The mirror is the
URI of the first enabled `deb` entry that carries a release's main archive: a suite without a "-security",
"-updates" or "-backports" style suffix, and the component "main". Exits 1, saying so, when no entry qualifies or
the machine is not Debian (an Ubuntu archive cannot debootstrap Debian): set DEBIAN_MIRROR then.

    python3 scripts/sam_local/apt_mirror.py [APT_DIR]    (default /etc/apt)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AptSource:
    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    enabled: bool = True


def one_line_sources(text: str) -> list[AptSource]:
    """Entries of the classic format: `deb [options] URI SUITE COMPONENT...`."""
    sources = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3:
            continue
        kind, rest = words[0], words[1:]
        if rest[0].startswith("["):  # options, e.g. [arch=amd64 signed-by=...]
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) >= 2:
            sources.append(AptSource((kind,), (rest[0],), (rest[1],), tuple(rest[2:])))
    return sources


def deb822_sources(text: str) -> list[AptSource]:
    """Entries of the deb822 format: paragraphs of `Field: values`, separated by blank lines."""
    sources = []
    for paragraph in _paragraphs(text):
        fields = {name.lower(): value.split() for name, value in paragraph.items()}
        enabled = (fields.get("enabled") or ["yes"])[0].lower() != "no"
        sources.append(
            AptSource(
                tuple(fields.get("types", ())),
                tuple(fields.get("uris", ())),
                tuple(fields.get("suites", ())),
                tuple(fields.get("components", ())),
                enabled,
            )
        )
    return sources


def _paragraphs(text: str) -> list[dict[str, str]]:
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last = {}, None
        elif line[0].isspace() and last:  # a continuation line
            current[last] += " " + line.strip()
        elif ":" in line:
            last, value = (part.strip() for part in line.split(":", 1))
            current[last] = value
    return paragraphs


def apt_sources(apt_dir: Path) -> list[AptSource]:
    """Every entry apt itself reads, in apt's order (sources.list, then sources.list.d by name)."""
    sources = []
    main_list = apt_dir / "sources.list"
    if main_list.is_file():
        sources += one_line_sources(main_list.read_text())
    parts = apt_dir / "sources.list.d"
    for path in sorted(parts.iterdir()) if parts.is_dir() else ():
        if path.suffix == ".list":
            sources += one_line_sources(path.read_text())
        elif path.suffix == ".sources":
            sources += deb822_sources(path.read_text())
    return sources


def debian_mirror(sources: list[AptSource]) -> str | None:
    for source in sources:
        if source.enabled and "deb" in source.types and "main" in source.components:
            if any("-" not in suite and "/" not in suite for suite in source.suites) and source.uris:
                return source.uris[0].rstrip("/")
    return None


def is_debian(os_release: Path = Path("/etc/os-release")) -> bool:
    try:
        fields = dict(line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line)
    except OSError:
        return False
    return fields.get("ID", "").strip('"') == "debian"


def main(argv: list[str]) -> int:
    apt_dir = Path(argv[1]) if len(argv) > 1 else Path("/etc/apt")
    mirror = debian_mirror(apt_sources(apt_dir)) if is_debian() else None
    if not mirror:
        print(
            f"apt_mirror: no Debian archive among the apt sources in {apt_dir} (or this is not Debian); "
            "set DEBIAN_MIRROR to a Debian mirror",
            file=sys.stderr,
        )
        return 1
    print(mirror)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
