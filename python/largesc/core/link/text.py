"""Text side channel: call sign, short UTF-8 messages and end of over (docs/text-channel.md).

A message (kind TEXT, CALLSIGN or END_OF_OVER; UTF-8, at most MAX_TEXT_BYTES) is sent as its
bytes plus a CRC-16 over kind, id and bytes, split into up to 32 chunks of up to 8 bytes. Each
chunk is one text packet, beside the voice packets and in the session's packet format:

    v1:       ver=2:2  kind:2  id:4  index:5  last:5  data:8k  pad:6  crc:8
    compact:  kind:2  id:4  index_hi:3  111  index_lo:2  last:5  data:8k  pad:5  [crc:8]

A v1 voice parser refuses ver 2; a compact voice packet with R = 7 needs at least 12 bytes
before its CRC, and a compact text packet has 4..11, so no text packet is a valid voice packet
and the receiver tells them apart by :func:`is_text` before parsing voice. The receiver
(:class:`TextReceiver`) shows a message only when every chunk has come and the CRC-16 holds:
a partial or mixed message is never shown. Parsers raise :class:`PacketError` only.
"""
import binascii
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import List, Optional, Tuple

from .frames import BITS_PER_TOKEN
from .packet import PacketError, crc8

TEXT, CALLSIGN, END_OF_OVER = 0, 1, 2
KIND_NAMES = {TEXT: "text", CALLSIGN: "callsign", END_OF_OVER: "end_of_over"}
MAX_TEXT_BYTES = 200            # UTF-8 bytes of one message
MAX_CALLSIGN_BYTES = 16
CHUNK_BYTES = 8                 # data bytes per chunk (a compact text packet: at most 11 bytes)
MAX_CHUNKS = 32
ID_MOD = 16
CHUNK_HEADER_BITS = 16          # kind, id, index, last: counted as text payload
_CALLSIGN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/-")


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF; the standard library's binascii.crc_hqx);
    crc16(b"123456789") == 0x29B1."""
    return binascii.crc_hqx(bytes(data), 0xFFFF)


@dataclass(frozen=True)
class Chunk:
    """One text packet's content: chunk `index` of 0..`last` of message `msg_id` of `kind`."""
    kind: int
    msg_id: int
    index: int
    last: int
    data: bytes


def check_text(text, limit: int = MAX_TEXT_BYTES, what: str = "text") -> bytes:
    """The UTF-8 bytes of `text` (str, or bytes that are valid UTF-8), 1..limit of them, or ValueError."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{what} must be valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, got {type(text).__name__}")
    if not all(ch.isprintable() or ch in "\n\t" for ch in text):
        raise ValueError(f"{what} must be printable text, got {text!r}")
    try:
        data = text.encode("utf-8", "strict")
    except UnicodeEncodeError as exc:                       # lone surrogates
        raise ValueError(f"{what} must be valid UTF-8 ({exc.reason})") from None
    if not 1 <= len(data) <= limit:
        raise ValueError(f"{what} must be 1..{limit} UTF-8 bytes, got {len(data)}")
    return data


def check_callsign(callsign: str) -> str:
    """'' (none) or 1..16 characters of A-Z, a-z, 0-9, '/', '-'; ValueError otherwise."""
    if not isinstance(callsign, str):
        raise ValueError(f"callsign must be a string, got {type(callsign).__name__}")
    if len(callsign) > MAX_CALLSIGN_BYTES or not set(callsign) <= _CALLSIGN_CHARS:
        raise ValueError(f"callsign must be up to {MAX_CALLSIGN_BYTES} characters of A-Z, 0-9, "
                         f"'/' and '-', got {callsign!r}")
    return callsign


def split_message(kind: int, msg_id: int, data: bytes) -> List[Chunk]:
    """The chunks of one message: data + CRC-16(kind, id, data), in pieces of <= CHUNK_BYTES."""
    body = bytes(data) + crc16(bytes((kind, msg_id)) + bytes(data)).to_bytes(2, "big")
    n = -(-len(body) // CHUNK_BYTES)
    if n > MAX_CHUNKS:
        raise ValueError(f"message of {len(data)} bytes needs more than {MAX_CHUNKS} chunks")
    size = -(-len(body) // n)                               # even pieces: cheaper packets
    return [Chunk(kind, msg_id, i, n - 1, body[i * size:(i + 1) * size]) for i in range(n)]


def _compact(fmt) -> bool:
    return fmt.name != "v1"


def chunk_bits(chunk: Chunk, fmt) -> dict:
    """Bits of the text packet of `chunk`: payload (chunk header + data), header, crc, pad, total."""
    payload = CHUNK_HEADER_BITS + 8 * len(chunk.data)
    header = 3 if _compact(fmt) else 2                      # marker 111 / ver
    pad = -(header + payload) % 8
    crc = 8 if fmt.has_crc else 0
    return {"payload_bits": payload, "header_bits": header, "crc_bits": crc, "pad_bits": pad,
            "total_bits": header + payload + pad + crc}


def chunk_tokens(chunk: Chunk) -> int:
    """Token-equivalents (11 bits) of the chunk's payload: what it takes from the budget B."""
    return -(-(CHUNK_HEADER_BITS + 8 * len(chunk.data)) // BITS_PER_TOKEN)


def pack_chunk(chunk: Chunk, fmt) -> bytes:
    """The text packet of `chunk` in format `fmt` (a core.link.packet_formats.PacketFormat)."""
    c = chunk
    if not (0 <= c.kind <= END_OF_OVER and 0 <= c.msg_id < ID_MOD and 0 <= c.index <= c.last < MAX_CHUNKS
            and 1 <= len(c.data) <= CHUNK_BYTES):
        raise ValueError(f"chunk fields out of range: {c}")
    if _compact(fmt):
        v = ((((c.kind << 4 | c.msg_id) << 3 | c.index >> 2) << 3 | 7) << 2 | c.index & 3) << 5 | c.last
        nbits = 19
    else:
        v = (((2 << 2 | c.kind) << 4 | c.msg_id) << 5 | c.index) << 5 | c.last
        nbits = 18
    for b in c.data:
        v = v << 8 | b
    nbits += 8 * len(c.data)
    pad = -nbits % 8
    body = (v << pad).to_bytes((nbits + pad) // 8, "big")
    return body + bytes((crc8(body),)) if fmt.has_crc else body


def is_text(data: bytes, fmt) -> bool:
    """True if `data` is a text packet of `fmt` by its marker (it may still be invalid)."""
    if not data:
        return False
    if not _compact(fmt):
        return data[0] >> 6 == 2
    body = len(data) - (1 if fmt.has_crc else 0)
    return 4 <= body <= 11 and (data[1] >> 4) & 7 == 7


def unpack_chunk(data, fmt) -> Chunk:
    """Decode and validate one text packet. Raises PacketError (only) on any invalid input."""
    try:
        data = bytes(data)
    except Exception as exc:                                  # noqa: BLE001 - hostile input
        raise PacketError("type", type(data).__name__) from exc
    if not is_text(data, fmt):
        raise PacketError("text_marker")
    if fmt.has_crc:
        if len(data) < 2 or crc8(data[:-1]) != data[-1]:
            raise PacketError("crc")
        data = data[:-1]
    head, pad = (19, 5) if _compact(fmt) else (18, 6)
    k = (8 * len(data) - head - pad) // 8
    if not 1 <= k <= CHUNK_BYTES or head + 8 * k + pad != 8 * len(data):
        raise PacketError("text_length", f"{len(data)} bytes")
    v = int.from_bytes(data, "big")
    if v & ((1 << pad) - 1):
        raise PacketError("padding")
    payload = (v >> pad) & ((1 << 8 * k) - 1)
    h = v >> (pad + 8 * k)
    if _compact(fmt):
        last, idx_lo, idx_hi = h & 31, (h >> 5) & 3, (h >> 10) & 7
        msg_id, kind, index = (h >> 13) & 15, h >> 17, idx_hi << 2 | idx_lo
    else:
        last, index, msg_id, kind = h & 31, (h >> 5) & 31, (h >> 10) & 15, (h >> 14) & 3
    if kind > END_OF_OVER:
        raise PacketError("text_kind", str(kind))
    if index > last:
        raise PacketError("text_range", f"chunk {index} of 0..{last}")
    return Chunk(kind, msg_id, index, last, payload.to_bytes(k, "big"))


@dataclass(frozen=True)
class Message:
    """A whole received message."""
    kind: int
    msg_id: int
    text: str


class TextReceiver:
    """Collects chunks into messages; `push(chunk)` returns the Message it completed, or None.

    A message is shown once (its repeats are counted as `text_repeats`) and only whole, with its
    CRC-16 right and valid UTF-8; chunks of up to `max_partial` messages wait, the oldest is
    dropped beyond that (`text_expired`). Counters: text_chunks, text_messages, text_repeats,
    text_bad_crc, text_bad_utf8, text_expired, text_conflicts (a chunk that disagrees with one
    already held: the partial message is restarted).
    """

    def __init__(self, max_partial: int = 8, remember: int = 16):
        self.max_partial = int(max_partial)
        self._partial: "OrderedDict[Tuple[int, int, int], dict]" = OrderedDict()
        self._done: deque = deque(maxlen=int(remember))
        self.counters = {"text_chunks": 0, "text_messages": 0, "text_repeats": 0,
                         "text_bad_crc": 0, "text_bad_utf8": 0, "text_expired": 0,
                         "text_conflicts": 0}

    def push(self, chunk: Chunk) -> Optional[Message]:
        c = self.counters
        c["text_chunks"] += 1
        key = (chunk.kind, chunk.msg_id, chunk.last)
        parts = self._partial.pop(key, {})
        old = parts.get(chunk.index)
        if old is not None and old != chunk.data:
            c["text_conflicts"] += 1
            parts = {}
        parts[chunk.index] = chunk.data
        if len(parts) <= chunk.last:
            self._partial[key] = parts
            while len(self._partial) > self.max_partial:
                self._partial.popitem(last=False)
                c["text_expired"] += 1
            return None
        body = b"".join(parts[i] for i in range(chunk.last + 1))
        data, crc = body[:-2], body[-2:]
        if len(body) < 3 or crc16(bytes((chunk.kind, chunk.msg_id)) + data).to_bytes(2, "big") != crc:
            c["text_bad_crc"] += 1
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            c["text_bad_utf8"] += 1
            return None
        seen = (chunk.kind, chunk.msg_id, data)
        if seen in self._done:
            c["text_repeats"] += 1
            return None
        self._done.append(seen)
        c["text_messages"] += 1
        return Message(chunk.kind, chunk.msg_id, text)


class TextSender:
    """The sender's queue of chunks: call sign schedule, text messages, end of over.

    callsign: '' or a call sign (check_callsign); it is queued `start_repeats` times at the
    start and again every `period_frames` frames, so a late listener learns it; text messages
    (`submit`) queue behind it. `tick(frame)` runs the schedule once per frame; `head_tokens()`
    is what the next chunk costs (token-equivalents, 0 if none), `pop()` takes it.
    `end_of_over()` returns the end-of-over chunks (the call sign, `eoo_repeats` times).
    Counters: text_messages_sent, text_chunks_sent, text_payload_bits, text_dropped.
    """

    def __init__(self, callsign: str = "", period_frames: int = 125, start_repeats: int = 4,
                 eoo_repeats: int = 3, max_queue: int = 256):
        self.callsign = check_callsign(callsign)
        if period_frames < 1 or start_repeats < 0 or eoo_repeats < 0:
            raise ValueError("period_frames must be >= 1, start_repeats and eoo_repeats >= 0")
        self.period_frames, self.start_repeats = int(period_frames), int(start_repeats)
        self.eoo_repeats, self.max_queue = int(eoo_repeats), int(max_queue)
        self._next_id = 0
        self._queue: deque = deque()
        self._callsign_chunks = self._split(CALLSIGN, callsign) if callsign else []
        self._frame0 = None
        self.counters = {"text_messages_sent": 0, "text_chunks_sent": 0, "text_payload_bits": 0,
                         "text_dropped": 0}

    def _split(self, kind, text, limit=MAX_TEXT_BYTES):
        data = check_text(text, limit)
        chunks = split_message(kind, self._next_id, data)
        self._next_id = (self._next_id + 1) % ID_MOD
        return chunks

    def submit(self, text) -> int:
        """Queue a text message (ValueError if it is not 1..200 bytes of printable UTF-8, or if
        the queue is full). Returns its chunk count."""
        chunks = self._split(TEXT, text)
        if len(self._queue) + len(chunks) > self.max_queue:
            self.counters["text_dropped"] += 1
            raise ValueError(f"text queue full ({len(self._queue)} chunks waiting)")
        self._queue.extend(chunks)
        self.counters["text_messages_sent"] += 1
        return len(chunks)

    def tick(self, frame: int) -> None:
        """Frame `frame` is about to be sent: queue the call sign when it is due."""
        if not self._callsign_chunks:
            return
        if self._frame0 is None:
            self._frame0 = frame
            self._queue.extendleft(reversed(self._callsign_chunks * self.start_repeats))
        elif (frame - self._frame0) % self.period_frames == 0 and \
                self._callsign_chunks[0] not in self._queue:
            self._queue.extend(self._callsign_chunks)

    def head_tokens(self) -> int:
        return chunk_tokens(self._queue[0]) if self._queue else 0

    def pop(self) -> Chunk:
        chunk = self._queue.popleft()
        self.count_sent(chunk)
        return chunk

    def count_sent(self, chunk: Chunk) -> None:
        """Count a chunk that went out (pop() does this; end-of-over chunks are counted by the caller)."""
        self.counters["text_chunks_sent"] += 1
        self.counters["text_payload_bits"] += CHUNK_HEADER_BITS + 8 * len(chunk.data)

    def end_of_over_tokens(self) -> int:
        """What end_of_over() costs (token-equivalents)."""
        if not self.callsign:
            return 0
        return self.eoo_repeats * sum(chunk_tokens(c) for c in split_message(END_OF_OVER, 0, self.callsign.encode()))

    def end_of_over(self) -> List[Chunk]:
        """End-of-over chunks (empty without a call sign); the over's queue is dropped."""
        if not self.callsign:
            return []
        self._queue.clear()
        self._frame0 = None
        return self._split(END_OF_OVER, self.callsign) * self.eoo_repeats
