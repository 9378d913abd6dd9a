"""The Python SDK of the job API: `from client import NstClient`."""

from client.sdk import NstApiError, NstClient

__all__ = ["NstApiError", "NstClient"]
