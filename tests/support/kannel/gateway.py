"""Run a real Kannel (bearerbox, smsbox) with fakesmsc as the phone network.

fakesmsc connects to bearerbox as its SMSC. Each line written to its standard input is
an SMS from a phone ("<from> <to> <type> <data>"); each SMS the gateway sends to a
phone it prints as "Got message N: <from> <to> <type> <data>". `PhoneNetwork` speaks
both sides of that, so a test can text the gateway and read what phones received.

Two habits of fakesmsc 1.4.5 shape the helpers: it reads its input with a 256-byte
buffer (a longer line is cut into several messages), and with stdio buffering it may
sit on a second line written together with the first until more input arrives. So
each message is one short line, written alone.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

import requests

from bot.rules.smstext import is_gsm7
from tests.support.kannel.config import SERVICE_NUMBER, SMSC_ID, KannelTestConfig

# Debian installs the boxes in /usr/sbin, which a user's PATH may lack, and fakesmsc
# outside any PATH.
SEARCH_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/lib/kannel/test", "/usr/local/lib/kannel/test")
MAX_LINE_BYTES = 255
_RECEIVED = re.compile(r"Got message \d+: <(.*)>\s*$")


@dataclass(frozen=True)
class KannelBinaries:
    bearerbox: str
    smsbox: str
    fakesmsc: str


def _find(program: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    return next((f"{d}/{program}" for d in SEARCH_DIRS if os.access(f"{d}/{program}", os.X_OK)), None)


def find_binaries() -> KannelBinaries | None:
    """Kannel's programs (Debian packages `kannel` and `kannel-extras`), or None."""
    bearerbox, smsbox, fakesmsc = _find("bearerbox"), _find("smsbox"), _find("fakesmsc")
    if not (bearerbox and smsbox and fakesmsc):
        return None
    return KannelBinaries(bearerbox, smsbox, fakesmsc)


@dataclass(frozen=True)
class ReceivedSms:
    sender: str
    to: str
    text: str
    coding: str  # "text" (7-bit), "ucs-2", or "concatenated" for a reassembled multi-part SMS


def _plus_unquote(data: str) -> bytes:
    """Kannel's URL encoding writes a space as "+"."""
    return unquote_to_bytes(data.replace("+", " "))


def _decode_parts(data: bytes) -> str:
    """Concatenated parts do not say their coding on fakesmsc's line. 7-bit text comes
    from the fake SMSC as UTF-8 without control characters; UTF-16BE bytes are either
    no UTF-8 at all (emoji) or full of them (0x00 before every ASCII letter, 0x19 in "’")."""
    try:
        text = data.decode("utf-8")
        if not any(ord(ch) < 32 and ch not in "\n\r" for ch in text):
            return text
    except UnicodeDecodeError:
        pass
    return data.decode("utf-16-be", errors="replace")


@dataclass
class PhoneNetwork:
    """Both ends of fakesmsc: phones texting the gateway, and what phones received."""

    process: subprocess.Popen[bytes]
    received: list[ReceivedSms] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    _parts: dict[tuple[str, int], dict[int, bytes]] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def start_reading(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._changed:
                self.lines.append(line)
                match = _RECEIVED.search(line)
                if match:
                    self._add(match.group(1))
                self._changed.notify_all()

    def _add(self, line: str) -> None:
        sender, to, kind, data = (line.split(" ", 3) + [""])[:4]
        if kind == "text":
            self.received.append(ReceivedSms(sender, to, data, "text"))
        elif kind == "data":
            text = _plus_unquote(data).decode("utf-8", "replace")
            self.received.append(ReceivedSms(sender, to, text, "text"))
        elif kind == "ucs-2":
            text = _plus_unquote(data).decode("utf-16-be", "replace")
            self.received.append(ReceivedSms(sender, to, text, "ucs-2"))
        elif kind == "udh":
            udh_data, _, payload = data.partition(" ")
            udh = _plus_unquote(udh_data)
            # 05 00 03 <ref> <total> <seq>: the concatenation header Kannel writes.
            ref, total, seq = udh[3], udh[4], udh[5]
            parts = self._parts.setdefault((to, ref), {})
            parts[seq] = _plus_unquote(payload.partition(" ")[2])
            if len(parts) == total:
                del self._parts[(to, ref)]
                joined = b"".join(parts[i] for i in sorted(parts))
                self.received.append(ReceivedSms(sender, to, _decode_parts(joined), "concatenated"))

    def text(self, sender: str, body: str, to: str = SERVICE_NUMBER) -> None:
        """An SMS from `sender`: 7-bit when the text allows it, else UCS-2, as a phone does."""
        if is_gsm7(body) and "\n" not in body:
            line = f"{sender} {to} text {body}"
        else:
            line = f"{sender} {to} ucs2 {quote_from_bytes(body.encode('utf-16-be'), safe='')}"
        if len(line.encode()) > MAX_LINE_BYTES:
            raise ValueError("fakesmsc reads at most 255 bytes a line: keep test messages short")
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def wait_for(self, to: str, count: int = 1, timeout: float = 20.0) -> list[ReceivedSms]:
        """The first `count` messages a phone received since the test began.

        "+62…" and "62…" are the same phone: Kannel passes on the number as it was given.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                mine = [sms for sms in self.received if sms.to.lstrip("+") == to.lstrip("+")]
                if len(mine) >= count:
                    return mine[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        f"{to} received {len(mine)} of {count} SMS; fakesmsc said:\n"
                        + "\n".join(self.lines[-20:])
                    )
                self._changed.wait(remaining)


def _log_tail(workdir: Path) -> str:
    logs = [workdir / name for name in ("bearerbox.log", "smsbox.log")]
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())


@dataclass(frozen=True)
class KannelGateway:
    config: KannelTestConfig
    phones: PhoneNetwork
    workdir: Path

    def log_tail(self) -> str:
        return _log_tail(self.workdir)


@contextmanager
def _started(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(ready: Callable[[], bool], what: str, workdir: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"Kannel: {what} not ready after {timeout:.0f} s\n{_log_tail(workdir)}")


def _answers(url: str) -> str:
    try:
        return requests.get(url, timeout=2).text
    except requests.RequestException:
        return ""


def _carrying_sms(config: KannelTestConfig) -> bool:
    """bearerbox sees fakesmsc online and smsbox connected, and sendsms answers."""
    status = _answers(config.status_url)
    return (
        f"{SMSC_ID}[{SMSC_ID}]" in status
        and "(online " in status
        and "smsbox:" in status
        and bool(_answers(config.sendsms_url))
    )


@contextmanager
def kannel_gateway(
    binaries: KannelBinaries, config: KannelTestConfig, workdir: Path
) -> Iterator[KannelGateway]:
    """bearerbox, fakesmsc and smsbox, started in that order and ready to carry SMS."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = config.write(workdir)
    with _started([binaries.bearerbox, "-v", "1", str(conf)], workdir / "bearerbox.out"):
        _wait(lambda: "Status: running" in _answers(config.status_url), "bearerbox", workdir)
        fake = subprocess.Popen(
            [binaries.fakesmsc, "-H", "127.0.0.1", "-r", str(config.fakesmsc_port), "-i", "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        phones = PhoneNetwork(fake)
        phones.start_reading()
        try:
            with _started([binaries.smsbox, "-v", "1", str(conf)], workdir / "smsbox.out"):
                _wait(lambda: _carrying_sms(config), "fakesmsc and smsbox", workdir)
                yield KannelGateway(config, phones, workdir)
        finally:
            # Closing its input is how fakesmsc's interactive mode is told to finish.
            if fake.stdin is not None:
                fake.stdin.close()
            _stop(fake)
