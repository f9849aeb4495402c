"""Length-prefixed frames over a stream socket.

A frame is ``MAGIC | u32 header length | u64 payload length | header | payload``:
the header is UTF-8 JSON (an object), the payload raw bytes (tensor data). Both lengths
are checked against caps *before* anything is allocated, so a hostile peer that claims
10 GB gets an error, not an allocation.
"""
from __future__ import annotations

import json
import socket
import struct
import time

MAGIC = b"AGW1"
_PREFIX = struct.Struct(">4sIQ")
MAX_HEADER_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024 * 1024
READY_MARK = b"\n[autograder worker ready]\n"   # a portable worker's output line: started, serving frames


class FrameError(Exception):
    """The peer sent something that is not a well-formed frame."""


class PeerClosed(Exception):
    """The peer closed the connection (or died) before a whole frame arrived."""


class Deadline(Exception):
    """No whole frame arrived before the deadline."""


def send_frame(sock: socket.socket, header: dict, payload: bytes = b"", deadline: float | None = None) -> None:
    """Send one frame; with a deadline (time.monotonic()), a peer that stops reading raises Deadline."""
    head = json.dumps(header, separators=(",", ":")).encode()
    sock.settimeout(None if deadline is None else max(deadline - time.monotonic(), 0.001))
    try:
        sock.sendall(_PREFIX.pack(MAGIC, len(head), len(payload)) + head)
        if payload:
            sock.sendall(payload)
    except socket.timeout:
        raise Deadline() from None
    except OSError as exc:
        raise PeerClosed(str(exc)) from None


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Deadline()
            sock.settimeout(left)
        else:
            sock.settimeout(None)
        try:
            k = sock.recv_into(view[got:], n - got)
        except socket.timeout:
            raise Deadline() from None
        except (ConnectionResetError, BrokenPipeError, OSError) as exc:
            raise PeerClosed(str(exc)) from None
        if k == 0:
            raise PeerClosed("connection closed")
        got += k
    return buf


def recv_frame(sock: socket.socket, deadline: float | None = None,
               max_payload: int = DEFAULT_MAX_PAYLOAD_BYTES) -> tuple[dict, bytearray]:
    """Read one frame; returns (header, payload). Deadline is a time.monotonic() value."""
    magic, head_len, payload_len = _PREFIX.unpack(_recv_exact(sock, _PREFIX.size, deadline))
    if magic != MAGIC:
        raise FrameError(f"bad frame magic {bytes(magic)!r}")
    if head_len > MAX_HEADER_BYTES:
        raise FrameError(f"frame header of {head_len} bytes exceeds the {MAX_HEADER_BYTES}-byte cap")
    if payload_len > max_payload:
        raise FrameError(f"frame payload of {payload_len} bytes exceeds the {max_payload}-byte cap")
    head = _recv_exact(sock, head_len, deadline)
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameError(f"frame header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FrameError("frame header is not a JSON object")
    payload = _recv_exact(sock, payload_len, deadline) if payload_len else bytearray()
    return header, payload
