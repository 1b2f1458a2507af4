"""Followers a proposer has heard from: each names itself in a request header, and is listed on
``/status`` and ``/net_info`` while it keeps fetching. Names are what followers claim (there
is no peer authentication): the list informs an operator, nothing depends on it."""

from __future__ import annotations

import re
import threading
import time

import attrs

PEER_HEADER = "x-lazyledger-peer"
"""Request header a follower sends with every request to its upstream: its own URL."""
HEIGHT_HEADER = "x-lazyledger-height"
"""Request header a follower sends beside ``PEER_HEADER``: its head height."""
PEER_TTL = 30.0
"""Seconds after its last request that a follower stops being listed."""
MAX_PEERS = 256
"""Followers remembered at once; the one heard from longest ago is forgotten first."""

_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]{1,200}")
_HEIGHT = re.compile(r"[0-9]{1,19}")


@attrs.frozen
class Peer:
    """One follower as last heard from."""

    url: str
    remote: str
    seen: float
    height: int | None


class PeerBook:
    """Recently seen followers, thread-safe and bounded."""

    def __init__(self, ttl: float = PEER_TTL, capacity: int = MAX_PEERS) -> None:
        self.ttl, self.capacity = ttl, capacity
        self._lock = threading.Lock()
        self._peers: dict[str, Peer] = {}

    def saw(
        self, url: str | None, remote: str, height: str | None, now: float | None = None
    ) -> None:
        """Record a request from the follower at ``url`` (ignored unless it is an http(s)
        URL). A request without a well-formed height (only a follower's status polls carry
        one) keeps the height last reported."""
        if url is None or _URL.fullmatch(url) is None:
            return
        h = int(height) if height is not None and _HEIGHT.fullmatch(height) else None
        t = time.monotonic() if now is None else now
        with self._lock:
            last = self._peers.pop(url, None)
            if h is None and last is not None:
                h = last.height
            self._peers[url] = Peer(url, remote, t, h)
            while len(self._peers) > self.capacity:
                del self._peers[next(iter(self._peers))]

    def recent(self, now: float | None = None) -> list[Peer]:
        """Followers heard from within the last ``ttl`` seconds, by URL."""
        t = time.monotonic() if now is None else now
        with self._lock:
            for url in [u for u, p in self._peers.items() if t - p.seen > self.ttl]:
                del self._peers[url]
            return sorted(self._peers.values(), key=lambda p: p.url)
