"""Library errors in the log as a plant engineer reads it: asyncua's "Not trusted certificate used"
on every retry becomes one line, without a traceback."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import pytest
from asyncua.crypto import cert_gen
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.service.logsetup import configure_logging
from tests.integration.opcua_workshop import driver_for, opcua_workshop, server_for

pytestmark = pytest.mark.integration
RETRIES = 3


async def test_an_untrusted_server_retried_logs_the_library_error_once_without_traceback(
    tmp_path: Path,
) -> None:
    config = opcua_workshop(tmp_path)  # reconnect_max_s 1: a retry about every second
    buffer = io.StringIO()
    configure_logging("INFO", buffer)
    try:
        async with server_for(config):
            driver = driver_for(config)
            # trusted/ holds a certificate, but another server's: asyncua's trust store logs
            # "Not trusted certificate used" with a traceback on every attempt
            other = cert_gen.generate_self_signed_app_certificate(
                cert_gen.generate_private_key(),
                "urn:other-server",
                {"commonName": "another server"},
                [],
                extended=[ExtendedKeyUsageOID.SERVER_AUTH],
            )
            driver.pki.trusted.mkdir(parents=True, exist_ok=True)
            (driver.pki.trusted / "other.der").write_bytes(other.public_bytes(Encoding.DER))
            async with driver:
                attempts = 1  # the connect on entering
                while attempts < RETRIES:
                    before = driver._next_attempt
                    result = await driver.read()
                    assert not result.statuses[0].connected
                    if driver._next_attempt != before:
                        attempts += 1
                    await asyncio.sleep(0.1)
    finally:
        logging.getLogger().handlers.clear()
    text = buffer.getvalue()
    assert text.count("Not trusted certificate used") == 1, text
    assert "Traceback" not in text
    assert "is not trusted" in text  # the agent's own event, with what to do
