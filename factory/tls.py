"""One verifying TLS context per process for every outgoing HTTPS call.

Building one loads the CA bundle, which costs tens of milliseconds of CPU:
more than a whole status call. httpx takes a ready context as ``verify``,
and a context may serve any number of connections and threads.
"""
import ssl
from functools import cache

import httpx


@cache
def ssl_context() -> ssl.SSLContext:
    """httpx's own verifying context (certifi's CA bundle), built once."""
    return httpx.create_ssl_context()
