"""A kannel.conf for tests: bearerbox and smsbox on free loopback ports, fakesmsc as the
phone network, and the app's Kannel endpoints as sms-service and DLR target.

It follows deploy/kannel/kannel.conf (the production sample) wherever the gateway's
contract with the app is concerned: the sms-service URL and its escapes, omit-empty,
max-messages and concatenation, callback retries. Only what faces the network (an
SMPP account, persistent stores, log files under /var) differs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.channels.kannel import INBOUND_PATH, WEBHOOK_USER
from tools.processes import free_port

SMSC_ID = "fakesmsc"
SERVICE_NUMBER = "99171"


@dataclass(frozen=True)
class KannelTestConfig:
    """Ports, credentials and the app URL of one test gateway."""

    app_url: str
    webhook_secret: str
    sendsms_username: str = "bansos"
    sendsms_password: str = "sendsms-test-password"
    admin_password: str = "admin-test-password"
    admin_port: int = 0
    smsbox_port: int = 0
    sendsms_port: int = 0
    fakesmsc_port: int = 0

    @classmethod
    def on_free_ports(cls, app_url: str, webhook_secret: str) -> "KannelTestConfig":
        return cls(
            app_url=app_url,
            webhook_secret=webhook_secret,
            admin_port=free_port(),
            smsbox_port=free_port(),
            sendsms_port=free_port(),
            fakesmsc_port=free_port(),
        )

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/status.txt?password={self.admin_password}"

    def inbound_url(self) -> str:
        """The post-url of the sms-service: the app's endpoint, secret as userinfo."""
        scheme, rest = self.app_url.split("://", 1)
        return (
            f"{scheme}://{WEBHOOK_USER}:{self.webhook_secret}@{rest}{INBOUND_PATH}"
            "?id=%I&from=%p&to=%P&coding=%c&charset=%C"
        )

    def render(self, logdir: Path) -> str:
        return f"""\
group = core
admin-port = {self.admin_port}
admin-interface = 127.0.0.1
admin-password = "{self.admin_password}"
admin-allow-ip = "127.0.0.1"
smsbox-port = {self.smsbox_port}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "{logdir / 'bearerbox.log'}"
log-level = 1
access-log = "{logdir / 'access.log'}"
access-log-format = "%l [SMSC:%i] [SVC:%n] [FID:%F] [from:%p] [to:%P] [flags:%m:%c:%M:%C:%d]"
dlr-storage = internal
sms-combine-concatenated-mo = true

group = smsc
smsc = fake
smsc-id = {SMSC_ID}
port = {self.fakesmsc_port}
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"
unified-prefix = "+62,0062,62,0"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.smsbox_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{logdir / 'smsbox.log'}"
log-level = 1
http-request-retry = 3
http-queue-delay = 1
reply-couldnotfetch = "Maaf, layanan sedang gangguan. Silakan kirim ulang SMS Anda nanti."
reply-requestfailed = "Maaf, layanan sedang gangguan. Silakan kirim ulang SMS Anda nanti."
reply-couldnotrepresent = "Maaf, layanan sedang gangguan. Silakan kirim ulang SMS Anda nanti."
reply-emptymessage = ""

group = sendsms-user
username = "{self.sendsms_username}"
password = "{self.sendsms_password}"
user-allow-ip = "127.0.0.1"
max-messages = 3
concatenation = true

group = sms-service
keyword = default
post-url = "{self.inbound_url()}"
max-messages = 3
concatenation = true
omit-empty = true
"""

    def write(self, workdir: Path) -> Path:
        path = workdir / "kannel.conf"
        path.write_text(self.render(workdir))
        return path
