"""pip's install settings as uv's options, one per line.

uv reads neither pip's config files nor its PIP_* variables, yet they say where packages
come from (on some machines, torch's CPU build from a find-links folder), what is pinned
and which certificates to trust. scripts/install.sh passes these lines to `uv pip install`
so that uv installs what pip would, from where pip would:

    python -m pip config list | python scripts/uv_options.py

Reads `pip config list` (``scope.name='value'``, the value as Python's repr) on stdin and
prints ``--option=value`` lines, and ``SSL_CERT_FILE=path`` for pip's ``cert``. Where
several scopes set one value (index-url, cert), pip's precedence picks it: a variable over
the site's file over the user's over the global one. Settings uv has no equal for (timeouts,
the version check) are left out.
"""

from __future__ import annotations

import ast
import sys

# pip's list-valued settings: every scope's values are used, as pip merges its sources
LISTS = {
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
    "trusted-host": "--allow-insecure-host",
}
PRECEDENCE = (":env:", "site", "user", "global")  # the first one set wins


def settings(listing: str) -> dict[str, dict[str, str]]:
    """``{name: {scope: value}}`` from `pip config list`'s output."""
    found: dict[str, dict[str, str]] = {}
    for line in listing.splitlines():
        key, equals, literal = line.partition("=")
        scope, dot, name = key.partition(".")
        if not (equals and dot):
            continue
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            value = literal.strip("'\"")
        found.setdefault(name, {})[scope] = str(value)
    return found


def by_precedence(values: dict[str, str]) -> list[str]:
    """``{scope: value}``'s values, the one pip heeds first."""
    rank = {scope: i for i, scope in enumerate(PRECEDENCE)}
    return [v for _, v in sorted(values.items(), key=lambda kv: rank.get(kv[0], len(rank)))]


def first_by_precedence(values: dict[str, str]) -> str | None:
    return next(iter(by_precedence(values)), None)


def uv_options(listing: str) -> list[str]:
    found = settings(listing)
    lines: list[str] = []
    index = first_by_precedence(found.get("index-url", {}))
    if index:
        lines.append(f"--index-url={index}")
    for name, option in LISTS.items():
        for value in by_precedence(found.get(name, {})):
            lines += [f"{option}={v}" for v in value.split() if f"{option}={v}" not in lines]
    cert = first_by_precedence(found.get("cert", {}))
    if cert:
        lines.append(f"SSL_CERT_FILE={cert}")
    return lines


if __name__ == "__main__":
    print("\n".join(uv_options(sys.stdin.read())))
