"""Content-Encoding decoded by us, with a cap on the output of every step.

httpx decodes a whole network chunk at once, so 64 KiB of a gzip bomb becomes ~64 MiB before
anyone can count it. Here `zlib.decompressobj(...).decompress(data, max_length)` never produces
more than the bytes still allowed (plus one, to notice the overflow).
"""

from __future__ import annotations

import zlib

from monitor.errors import PermanentFeedError

SUPPORTED = ("gzip", "x-gzip", "deflate", "identity")


class BodyTooLarge(Exception):  # noqa: N818 -- a signal inside the fetcher, not an error class
    """The body exceeds the cap, on the wire or (`decompressed`) once decoded."""

    def __init__(self, *, decompressed: bool) -> None:
        super().__init__("decompressed" if decompressed else "on the wire")
        self.decompressed = decompressed


class _Zlib:
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._gzip = encoding != "deflate"
        self._first = True
        self._decoder = self._new()

    def _new(self, raw: bool = False) -> zlib._Decompress:
        if self._gzip:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def decode(self, data: bytes, limit: int) -> bytes:
        try:
            return self._decode(data, limit)
        except zlib.error as error:
            raise PermanentFeedError(
                f"the body is not valid {self.encoding} data (Content-Encoding: {self.encoding})"
            ) from error

    def _decode(self, data: bytes, limit: int) -> bytes:
        if self._first and data and not self._gzip:
            self._first = False
            try:  # "deflate" means zlib-wrapped, but some servers send raw deflate
                return self._decoder.decompress(data, limit + 1)
            except zlib.error:
                self._decoder = self._new(raw=True)
        self._first = False
        out = self._decoder.decompress(data, limit + 1)
        # A gzip body may hold several members one after another.
        while self._gzip and self._decoder.eof and self._decoder.unused_data and len(out) <= limit:
            rest = self._decoder.unused_data
            self._decoder = self._new()
            out += self._decoder.decompress(rest, limit + 1 - len(out))
        return out

    def finish(self) -> bytes:
        if not self._first and not self._decoder.eof:
            raise PermanentFeedError(f"the {self.encoding} body is truncated")
        return b""


class Decoder:
    """Undoes a Content-Encoding chain (`gzip`, `deflate`, `gzip, gzip`) under a byte cap."""

    def __init__(self, content_encoding: str, max_bytes: int) -> None:
        names = [name.strip().lower() for name in content_encoding.split(",") if name.strip()]
        unknown = [name for name in names if name not in SUPPORTED]
        if unknown:
            raise PermanentFeedError(f"unsupported Content-Encoding: {', '.join(unknown)}")
        # Encodings are listed in the order applied, so they are undone in reverse.
        self._steps = [_Zlib(name) for name in reversed(names) if name != "identity"]
        self.max_bytes = max_bytes
        self.received = 0  # bytes on the wire
        self.size = 0  # bytes decoded

    def decode(self, data: bytes) -> bytes:
        """Decode the next chunk from the wire; raise BodyTooLarge past the cap."""
        self.received += len(data)
        if self.received > self.max_bytes:
            raise BodyTooLarge(decompressed=False)
        for step in self._steps:
            data = step.decode(data, self.max_bytes - self.size)
        self._count(data)
        return data

    def finish(self) -> None:
        for step in self._steps:
            step.finish()

    def _count(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise BodyTooLarge(decompressed=True)
