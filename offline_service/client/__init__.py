"""Client SDK for licensed apps on offline machines: signed requests out, verified responses in.

Needs only PyNaCl and the standard library.
"""

from offline_service.client.machine import fingerprint, machine_id
from offline_service.client.sdk import DEFAULT_CLOCK_OFFSET, Client

__all__ = ["DEFAULT_CLOCK_OFFSET", "Client", "fingerprint", "machine_id"]
