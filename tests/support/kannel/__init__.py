"""A real Kannel gateway for tests: a kannel.conf generator and the processes around it."""
from tests.support.kannel.config import SERVICE_NUMBER, KannelTestConfig
from tests.support.kannel.gateway import (
    KannelBinaries,
    KannelGateway,
    PhoneNetwork,
    ReceivedSms,
    find_binaries,
    kannel_gateway,
)

__all__ = [
    "SERVICE_NUMBER",
    "KannelBinaries",
    "KannelGateway",
    "KannelTestConfig",
    "PhoneNetwork",
    "ReceivedSms",
    "find_binaries",
    "kannel_gateway",
]
