"""The Python SDK of the job API: `from client import NstClient, AsyncNstClient, stylize`."""

from client.aio import AsyncNstClient
from client.calls import DEFAULT_WAIT_TIMEOUT
from client.errors import NstApiError, NstError, NstJobFailed, NstTransportError, NstWaitTimeout
from client.sdk import NstClient, stylize

__all__ = ["DEFAULT_WAIT_TIMEOUT", "AsyncNstClient", "NstApiError", "NstClient", "NstError",
           "NstJobFailed", "NstTransportError", "NstWaitTimeout", "stylize"]
