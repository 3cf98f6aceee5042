"""PDU recording files (docs/recording.md): the format the PDU Recorder writes and the PDU
Replayer reads. Not a block.

File = 16-byte header (magic, version) + records. Record = u32 length + body + u32 CRC-32.
Body = time source, time (full secs, frac secs), host time, metadata (GNU Radio's PMT
serialisation, `pmt.serialize_str`), payload bytes. All integers big-endian.

Metadata is written with GNU Radio's own serialiser, but read back with the bounded decoder
below (`decode_pmt`), not with `pmt.deserialize_str`: GNU Radio's deserialiser trusts the
counts in its input (a corrupted tuple length makes it loop for minutes or allocate without
bound), and a recording is a file from disk. The decoder accepts exactly what
`pmt.serialize_str` writes for the types PDU metadata holds, checks every count against the
bytes left, limits the nesting depth, and raises `RecordError` on anything else.
"""
import math
import os
import struct
import time
import zlib

import numpy as np
import pmt

MAGIC = b"\x89LSCPDU\n"          # 8 bytes; the high bit and the newline catch text-mode copies
VERSION = 1
HEADER = struct.Struct(">8sHHI")  # magic, version, header size, flags (0)
HEADER_SIZE = HEADER.size         # 16
LENGTH = struct.Struct(">I")
CRC = struct.Struct(">I")
FIXED = struct.Struct(">BBHQddI")  # time source, 0, 0, full secs, frac secs, host time, meta length
FIXED_SIZE = FIXED.size            # 32
MAX_BODY = 16 * 2 ** 20            # a record body above 16 MiB is corruption, not a PDU
MIN_BODY = FIXED_SIZE + 4          # no metadata, empty payload
TIME_HOST, TIME_RX = 0, 1
TIME_SOURCES = {TIME_HOST: "host", TIME_RX: "rx_time"}
RX_TIME = pmt.intern("rx_time")
MAX_DEPTH = 32


class RecordError(Exception):
    """A recording that cannot be read; the message names the file and the byte offset."""


# ----------------------------------------------------------------------------- times
def split_time(t: float):
    """Seconds (float) -> (full secs, frac secs in [0, 1))."""
    full = math.floor(t)
    return int(full), float(t - full)


def rx_time_of(meta):
    """(full secs, frac secs) from PDU metadata key `rx_time` (UHD's tuple of uint64 + double,
    as gr-pdu's Tags to PDU and Tagged Stream to PDU carry it), else None."""
    try:
        if not pmt.is_dict(meta) or pmt.is_null(meta):
            return None
        v = pmt.dict_ref(meta, RX_TIME, pmt.PMT_NIL)
        if not pmt.is_tuple(v) or pmt.length(v) != 2:
            return None
        a, b = pmt.tuple_ref(v, 0), pmt.tuple_ref(v, 1)
        if pmt.is_uint64(a):
            full = pmt.to_uint64(a)
        elif pmt.is_integer(a):
            full = pmt.to_long(a)
        else:
            return None
        frac = pmt.to_double(b) if pmt.is_real(b) or pmt.is_integer(b) else None
        if frac is None or full < 0 or full >= 2 ** 64 or not (0.0 <= frac < 1.0):
            return None
        return int(full), float(frac)
    except Exception:                                       # noqa: BLE001 - hostile metadata
        return None


# ----------------------------------------------------------------------------- writing
def header_bytes() -> bytes:
    return HEADER.pack(MAGIC, VERSION, HEADER_SIZE, 0)


def encode_record(payload: bytes, meta_bytes: bytes, source: int, full: int, frac: float,
                  host_time: float) -> bytes:
    """One record: length, body, CRC-32 (zlib's) over length and body."""
    body = FIXED.pack(source, 0, 0, full, frac, host_time, len(meta_bytes)) + meta_bytes \
        + LENGTH.pack(len(payload)) + payload
    if len(body) > MAX_BODY:
        raise ValueError(f"record of {len(body)} bytes is over the {MAX_BODY}-byte limit")
    head = LENGTH.pack(len(body))
    return head + body + CRC.pack(zlib.crc32(head + body) & 0xFFFFFFFF)


# ----------------------------------------------------------------------------- reading
class Record:
    """One record read back: payload bytes, metadata bytes (PMT serialisation, b'' = none),
    time source (TIME_HOST / TIME_RX), full and frac secs, host time, offset in the file."""

    __slots__ = ("payload", "meta_bytes", "source", "full", "frac", "host_time", "offset")

    def __init__(self, payload, meta_bytes, source, full, frac, host_time, offset):
        self.payload, self.meta_bytes, self.source = payload, meta_bytes, source
        self.full, self.frac, self.host_time, self.offset = full, frac, host_time, offset

    @property
    def time(self) -> float:
        """The record's time in seconds (rx_time or host time, see `source`)."""
        return self.full + self.frac

    def meta(self):
        """The metadata as a PMT (PMT_NIL when none was recorded); RecordError if malformed."""
        return decode_pmt(self.meta_bytes) if self.meta_bytes else pmt.PMT_NIL


def read_header(f, path) -> None:
    """Check the file header at the current position (the start); RecordError if wrong."""
    raw = f.read(HEADER_SIZE)
    if len(raw) < HEADER_SIZE:
        raise RecordError(f"{path}: not a PDU recording (only {len(raw)} bytes; a header has {HEADER_SIZE})")
    magic, version, size, flags = HEADER.unpack(raw)
    if magic != MAGIC:
        raise RecordError(f"{path}: not a PDU recording (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise RecordError(f"{path}: recording version {version} is not supported (this reader: {VERSION})")
    if size != HEADER_SIZE or flags != 0:
        raise RecordError(f"{path}: header size {size} / flags {flags:#x} not valid for version 1")


def read_record(f, path, index):
    """The next record, None at a clean end of file, or ('torn', offset, have, need) when the
    file ends inside a record. RecordError on a corrupt record (bad length, CRC, fields)."""
    offset = f.tell()
    head = f.read(LENGTH.size)
    if not head:
        return None
    if len(head) < LENGTH.size:
        return ("torn", offset, len(head), LENGTH.size)
    (n,) = LENGTH.unpack(head)
    if n < MIN_BODY or n > MAX_BODY:
        raise RecordError(f"{path}: record {index} at byte {offset} is corrupt (length {n}, "
                          f"valid {MIN_BODY}..{MAX_BODY})")
    rest = f.read(n + CRC.size)
    if len(rest) < n + CRC.size:
        return ("torn", offset, LENGTH.size + len(rest), LENGTH.size + n + CRC.size)
    body, (crc,) = rest[:n], CRC.unpack(rest[n:])
    if zlib.crc32(head + body) & 0xFFFFFFFF != crc:
        raise RecordError(f"{path}: record {index} at byte {offset} is corrupt (CRC mismatch)")
    source, r1, r2, full, frac, host_time, mlen = FIXED.unpack_from(body, 0)
    pos = FIXED_SIZE
    if source not in TIME_SOURCES or r1 or r2 or not (0.0 <= frac < 1.0) \
            or not math.isfinite(host_time) or pos + mlen + 4 > n:
        raise RecordError(f"{path}: record {index} at byte {offset} is corrupt (fields)")
    meta_bytes = body[pos:pos + mlen]
    pos += mlen
    (plen,) = LENGTH.unpack_from(body, pos)
    pos += 4
    if pos + plen != n:
        raise RecordError(f"{path}: record {index} at byte {offset} is corrupt (payload length "
                          f"{plen} does not fill the record)")
    return Record(body[pos:], meta_bytes, source, full, frac, host_time, offset)


def scan(path):
    """Check a whole recording. Returns {'records': [offsets], 'times': [(source, time,
    host_time)], 'torn': None or (offset, have, need), 'bytes': file size}. Raises RecordError
    (naming the file) on a bad header, a corrupt record or malformed metadata."""
    offsets, times, torn = [], [], None
    with open(path, "rb") as f:
        read_header(f, path)
        while True:
            r = read_record(f, path, len(offsets))
            if r is None:
                break
            if isinstance(r, tuple):
                torn = r[1:]
                break
            try:
                r.meta()
            except RecordError as exc:
                raise RecordError(f"{path}: record {len(offsets)} at byte {r.offset}: {exc}") from None
            offsets.append(r.offset)
            times.append((r.source, r.time, r.host_time))
        size = f.seek(0, os.SEEK_END)
    return {"records": offsets, "times": times, "torn": torn, "bytes": size}


def read_all(path):
    """All complete records of a recording (a torn last record is left out); RecordError if
    the file is not a valid recording. For tests and offline tools."""
    out = []
    with open(path, "rb") as f:
        read_header(f, path)
        while True:
            r = read_record(f, path, len(out))
            if r is None or isinstance(r, tuple):
                return out
            out.append(r)


# ----------------------------------------------------------------------------- PMT decoding
# Tags of GNU Radio's PMT serialisation (pmt_serial_tags.h) and its uniform vector types.
PST_TRUE, PST_FALSE, PST_SYMBOL, PST_INT32, PST_DOUBLE, PST_COMPLEX, PST_NULL, PST_PAIR, \
    PST_VECTOR, PST_DICT, PST_UNIFORM_VECTOR, PST_UINT64, PST_TUPLE, PST_INT64 = range(14)
_UVEC = {  # uniform vector type: (numpy big-endian dtype, element count factor, PMT constructor)
    0x00: (">u1", 1, "init_u8vector"), 0x01: (">i1", 1, "init_s8vector"),
    0x02: (">u2", 1, "init_u16vector"), 0x03: (">i2", 1, "init_s16vector"),
    0x04: (">u4", 1, "init_u32vector"), 0x05: (">i4", 1, "init_s32vector"),
    0x06: (">u8", 1, "init_u64vector"), 0x07: (">i8", 1, "init_s64vector"),
    0x08: (">f4", 1, "init_f32vector"), 0x09: (">f8", 1, "init_f64vector"),
    0x0a: (">f4", 2, "init_c32vector"), 0x0b: (">f8", 2, "init_c64vector"),
}
_MAX_SYMBOL = 1024          # GNU Radio's own limit


def decode_pmt(data: bytes):
    """PMT from GNU Radio's serialisation, with every count checked against the bytes left;
    RecordError on anything malformed, truncated, too deep or followed by extra bytes."""
    d = _Decoder(data)
    try:
        obj = d.obj(0)
    except RecordError:
        raise
    except Exception as exc:                                # noqa: BLE001 - a PMT constructor refused
        raise RecordError(f"metadata is malformed ({type(exc).__name__}: {exc})") from None
    if d.pos != len(data):
        raise RecordError(f"metadata has {len(data) - d.pos} bytes after its end")
    return obj


class _Decoder:
    def __init__(self, data):
        self.data, self.pos = bytes(data), 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise RecordError("metadata is truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def left(self):
        return len(self.data) - self.pos

    def obj(self, depth):
        if depth > MAX_DEPTH:
            raise RecordError(f"metadata nested deeper than {MAX_DEPTH}")
        (tag,) = self.unpack(">B")
        if tag == PST_TRUE:
            return pmt.PMT_T
        if tag == PST_FALSE:
            return pmt.PMT_F
        if tag == PST_NULL:
            return pmt.PMT_NIL
        if tag == PST_SYMBOL:
            (n,) = self.unpack(">H")
            if n > _MAX_SYMBOL:
                raise RecordError("metadata symbol too long")
            try:
                return pmt.intern(self.take(n).decode("utf-8"))
            except UnicodeDecodeError:
                raise RecordError("metadata symbol is not UTF-8") from None
        if tag == PST_INT32:
            return pmt.from_long(self.unpack(">i")[0])
        if tag == PST_INT64:
            return pmt.from_long(self.unpack(">q")[0])
        if tag == PST_UINT64:
            return pmt.from_uint64(self.unpack(">Q")[0])
        if tag == PST_DOUBLE:
            return pmt.from_double(self.unpack(">d")[0])
        if tag == PST_COMPLEX:
            re, im = self.unpack(">dd")
            return pmt.from_complex(complex(re, im))
        if tag in (PST_PAIR, PST_DICT):
            return self.pairs(tag, depth)
        if tag in (PST_VECTOR, PST_TUPLE):
            (n,) = self.unpack(">I")
            if n > self.left():                     # every element takes at least one byte
                raise RecordError("metadata vector length exceeds the data")
            items = [self.obj(depth + 1) for _ in range(n)]
            vec = pmt.make_vector(n, pmt.PMT_NIL)
            for i, item in enumerate(items):
                pmt.vector_set(vec, i, item)
            return pmt.to_tuple(vec) if tag == PST_TUPLE else vec
        if tag == PST_UNIFORM_VECTOR:
            utag, n, npad = self.unpack(">BIB")
            if utag not in _UVEC:
                raise RecordError(f"metadata uniform vector type {utag} unknown")
            self.take(npad)
            dtype, factor, ctor = _UVEC[utag]
            size = np.dtype(dtype).itemsize * factor
            if n * size > self.left():
                raise RecordError("metadata uniform vector length exceeds the data")
            arr = np.frombuffer(self.take(n * size), dtype=dtype)
            if factor == 2:
                arr = arr[0::2].astype(np.float64) + 1j * arr[1::2].astype(np.float64)
            values = arr.tolist()
            return getattr(pmt, ctor)(n, values)
        raise RecordError(f"metadata has an unknown PMT tag {tag}")

    def pairs(self, tag, depth):
        """A chain of pairs / dict cells as pmt.serialize writes it (car, then the cdr's tag:
        another cell, or the last cdr), built without recursion on the chain's length."""
        cells = []
        while True:
            cells.append((tag, self.obj(depth + 1)))
            if self.left() == 0:
                raise RecordError("metadata is truncated")
            nxt = self.data[self.pos]
            if nxt in (PST_PAIR, PST_DICT):
                self.pos += 1
                tag = nxt
                continue
            tail = self.obj(depth + 1)
            break
        for t, car in reversed(cells):
            if t == PST_DICT:
                if not pmt.is_dict(tail):
                    raise RecordError("metadata dict cell with a cdr that is not a dict")
                tail = pmt.dcons(car, tail)
            else:
                tail = pmt.cons(car, tail)
        return tail


def now() -> float:
    """Host time for records without rx_time (Unix time, seconds)."""
    return time.time()
