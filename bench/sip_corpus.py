"""The SIP corpora others wrote, read from ../shared/corpus/sip (never copied into the project).

- PROTOS c07-sip (University of Oulu): 4,527 INVITE test cases, each followed by its teardown
  (a CANCEL); every message is preceded by its length and a space, with placeholders to fill.
- RFC 4475's torture messages, byte for byte, one file each.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(os.environ.get("KORE_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))
SIP_CORPUS = SHARED / "corpus" / "sip"
PROTOS = SIP_CORPUS / "protos-c07-sip.tar.xz"
RFC4475 = SIP_CORPUS / "rfc4475"


@dataclass(frozen=True, slots=True)
class ProtosCase:
    number: int
    invite: bytes  # with placeholders
    teardown: bytes

    def filled(
        self, *, to: str, local: tuple[str, int], transport: str = "UDP", tag: str = ""
    ) -> tuple[bytes, bytes]:
        """The case's INVITE and CANCEL with its placeholders filled: sent to `to` (user@host:port),
        answers expected at `local`; each case its own Call-ID and branch (`tag` in both, so that
        runs do not take each other's cases for copies)."""
        values = {
            b"<To>": to.encode(),
            b"<From>": f"protos@{local[0]}".encode(),
            b"<From-Address>": local[0].encode(),
            b"<Local-Port>": str(local[1]).encode(),
            b"<From-IP>": local[0].encode(),
            b"<Branch-ID>": f"-{tag}{self.number}".encode(),
            b"<Call-ID>": f"protos-{tag}{self.number}".encode(),
            b"<CSeq>": b"1",
            b"<Teardown-Method>": b"CANCEL",
        }
        return _fill(self.invite, values, transport), _fill(self.teardown, values, transport)


def _fill(template: bytes, values: dict[bytes, bytes], transport: str) -> bytes:
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    if transport != "UDP":
        template = template.replace(b"SIP/2.0/UDP", f"SIP/2.0/{transport}".encode())
    _, _, body = template.partition(b"\r\n\r\n")
    return template.replace(b"<Content-Length>", str(len(body)).encode())


def protos_cases(path: Path = PROTOS) -> list[ProtosCase]:
    """Every case of the suite, in order of its number. The archive is read as a stream, once: an
    xz tar is not seekable, and reading its members one by one decompresses it again each time."""
    cases = []
    with tarfile.open(path, "r|xz") as archive:
        for member in archive:
            if not member.isfile() or "/protos/" not in f"/{member.name}":
                continue
            handle = archive.extractfile(member)
            messages = _split(handle.read()) if handle is not None else []
            if len(messages) == 2:
                cases.append(ProtosCase(int(Path(member.name).name), messages[0], messages[1]))
    return sorted(cases, key=lambda case: case.number)


def _split(data: bytes) -> list[bytes]:
    """`<length> <message><length> <message>`: the messages."""
    messages = []
    while data:
        length, _, rest = data.partition(b" ")
        size = int(length)
        messages.append(rest[:size])
        data = rest[size:]
    return messages


def rfc4475_messages(folder: Path = RFC4475) -> Iterator[tuple[str, bytes]]:
    for path in sorted(folder.glob("*.dat")):
        yield path.name, path.read_bytes()
