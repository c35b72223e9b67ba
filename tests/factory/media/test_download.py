"""Guarded downloads against real HTTP(S) servers on 127.0.0.1."""
import base64
import datetime
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from factory.media.addresses import address_problem
from factory.media.download import (
    DownloadError,
    RefusedURLError,
    TooLargeError,
    TooSlowError,
    UnavailableError,
    download,
    fetch_output,
)
from factory.media.inspect import MediaError
from tests.fakes.base import Fault, FakeProvider

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100
Script = Callable[[http.server.BaseHTTPRequestHandler], None]


class Scripted:
    """A tiny HTTP(S) server on 127.0.0.1 answering every GET with a script."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script, self.tls = script, tls
        self.requests: list[dict[str, str]] = []
        self.server_names: list[str | None] = []

    def start(self) -> "Scripted":
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # bodies may end at close

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                scripted.requests.append({"path": self.path, **self.headers})
                try:
                    scripted.script(self)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the client gave up, as it should

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            self.tls.sni_callback = self._remember_sni
            self.server.socket = self.tls.wrap_socket(
                self.server.socket, server_side=True
            )
        threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        ).start()
        return self

    def _remember_sni(self, sock: ssl.SSLObject, name: str | None, ctx) -> None:
        self.server_names.append(name)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/file.png", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"


def body(data: bytes, length: bool = True, status: int = 200) -> Script:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "image/png")
        if length:
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    return answer


def redirect(location: str) -> Script:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return answer


def drip(total: int, every: float) -> Script:
    """Announce ``total`` bytes, then send one every ``every`` seconds."""
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        for _ in range(total):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(every)
    return answer


def cut_short(handler: http.server.BaseHTTPRequestHandler) -> None:
    """Announce 1000 bytes and close after 10."""
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b"x" * 10)


@pytest.fixture
def serve():
    """Start Scripted servers; all stop when the test ends."""
    servers: list[Scripted] = []

    def start(script: Script, tls: ssl.SSLContext | None = None) -> Scripted:
        servers.append(Scripted(script, tls).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


class Resolver:
    """Scripted DNS answers for chosen names; other names resolve as usual."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self.real = socket.getaddrinfo

    def getaddrinfo(self, host, port, *args, **kwargs):
        if host not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.lookups.append(host)
        queue = self.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET,
                 socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]


@pytest.fixture
def resolver(monkeypatch) -> Resolver:
    """A Resolver standing in for socket.getaddrinfo."""
    scripted = Resolver()
    monkeypatch.setattr(socket, "getaddrinfo", scripted.getaddrinfo)
    return scripted


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, *allowed: str, **limits) -> bytes:
    """Download with test-sized limits, exempting the given address:ports."""
    options = {"max_bytes": 10_000, "timeout": 5.0, "allow_http": True,
               "allowed_private": set(allowed), **limits}
    return download(url, **options)


# ---------------------------------------------------------------- happy paths
def test_file_from_an_exempt_address_downloads(serve):
    server = serve(body(PNG_BYTES))
    assert get(server.url(), server.host_port) == PNG_BYTES
    assert server.requests[0]["Accept-Encoding"] == "identity"


def test_relative_redirect_on_the_same_server_is_followed(serve):
    target = serve(body(PNG_BYTES))
    server = serve(redirect(target.url()))
    assert get(server.url(), server.host_port, target.host_port) == PNG_BYTES


def test_fake_provider_files_download(settings):
    fake = FakeProvider().start()
    try:
        url = fake.serve_file("a.png", PNG_BYTES, "image/png")
        settings.DOWNLOAD_ALLOW_HTTP = True
        settings.DOWNLOAD_ALLOWED_PRIVATE_HOSTS = [fake.url.removeprefix("http://")]
        assert fetch_output(url) == PNG_BYTES
    finally:
        fake.stop()


# ---------------------------------------------------------------- addresses
def test_redirect_to_another_loopback_port_is_refused(serve):
    other = serve(body(PNG_BYTES))
    server = serve(redirect(other.url()))
    with pytest.raises(
        RefusedURLError, match=r"^refused redirect to 127\.0\.0\.1: loopback address$"
    ):
        get(server.url(), server.host_port)
    assert other.requests == []


def test_redirect_to_cloud_metadata_is_refused(serve):
    server = serve(redirect("http://169.254.169.254/latest/meta-data/"))
    with pytest.raises(
        RefusedURLError, match=r"^refused redirect to 169\.254\.169\.254: link-local"
    ):
        get(server.url(), server.host_port)


def test_redirect_to_a_file_url_is_refused(serve):
    server = serve(redirect("file:///etc/passwd"))
    with pytest.raises(
        RefusedURLError,
        match=r"^refused redirect to file:///etc/passwd: file URLs are not fetched",
    ):
        get(server.url(), server.host_port)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "file URLs are not fetched, only https and http"),
        ("ftp://93.184.215.14/a.png", "ftp URLs are not fetched"),
        ("gopher://93.184.215.14/", "gopher URLs are not fetched"),
        ("http://[::1]:8080/a.png", r"refused download from ::1: loopback address"),
        ("http://[::ffff:127.0.0.1]/a", r"from ::ffff:127\.0\.0\.1: loopback address"),
        ("http://10.0.0.8/a.png", "from 10.0.0.8: private address"),
        ("http://0.0.0.0:8080/a.png", "unspecified address"),
        ("http://224.0.0.1/a.png", "multicast address"),
        ("http:///a.png", "no host"),
    ],
)
def test_unsafe_urls_are_refused_before_connecting(url, message):
    with pytest.raises(RefusedURLError, match=message):
        get(url)


def test_http_is_refused_unless_allowed():
    with pytest.raises(
        RefusedURLError,
        match=r"^refused download from http://93\.184\.215\.14/a\.png: "
        r"http URLs are not fetched, only https$",
    ):
        get("http://93.184.215.14/a.png?token=secret", allow_http=False)


def test_a_name_resolving_to_loopback_is_refused(serve):
    server = serve(body(PNG_BYTES))
    with pytest.raises(
        RefusedURLError,
        match=r"^refused download from localhost \((127\.0\.0\.1|::1)\): loopback",
    ):
        get(server.url(host="localhost"))
    assert server.requests == []


def test_one_private_answer_among_public_ones_refuses_the_name(resolver):
    resolver.answers["cdn.test"] = [["93.184.215.14", "10.0.0.5"]]
    with pytest.raises(
        RefusedURLError,
        match=r"^refused download from cdn\.test \(10\.0\.0\.5\): private address$",
    ):
        get("https://cdn.test/a.png")


def test_only_the_listed_port_is_exempt(serve):
    server = serve(body(PNG_BYTES))
    with pytest.raises(RefusedURLError, match="loopback address"):
        get(server.url(), f"127.0.0.1:{server.port + 1}")


def test_dns_is_resolved_once_and_the_vetted_address_used(serve, resolver):
    server = serve(body(PNG_BYTES))
    # A rebinding resolver: the first answer passes, later ones would not.
    resolver.answers["files.test"] = [["127.0.0.1"], ["169.254.169.254"]]
    url = server.url(host="files.test")
    assert get(url, server.host_port) == PNG_BYTES
    assert resolver.lookups == ["files.test"]
    assert server.requests[0]["Host"] == f"files.test:{server.port}"


def test_unresolvable_name_fails_clearly(monkeypatch):
    def no_answer(host, port, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_answer)
    with pytest.raises(DownloadError, match=r"^cannot resolve nowhere\.test"):
        get("https://nowhere.test/a.png")


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("8.8.8.8", None), ("2606:4700::1111", None), ("64:ff9b::808:808", None),
        ("127.0.0.1", "loopback"), ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"), ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),
        ("169.254.169.254", "link-local"), ("::ffff:169.254.169.254", "link-local"),
        ("fe80::1", "link-local"), ("10.1.2.3", "private"),
        ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
        ("100.64.0.1", "non-public"), ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
        ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ],
)
def test_address_problem_names_each_kind(address, problem):
    assert address_problem(address) == problem


# ---------------------------------------------------------------- size and time
def test_announced_size_over_the_cap_is_refused_before_reading(serve):
    server = serve(body(b"x" * 5000))
    with pytest.raises(
        TooLargeError,
        match=r"^output larger than 1000 bytes: 127\.0\.0\.1 announced 5000 bytes$",
    ):
        get(server.url(), server.host_port, max_bytes=1000)


def test_unannounced_size_over_the_cap_is_stopped_while_streaming(serve):
    server = serve(body(b"x" * 50_000, length=False))
    with pytest.raises(TooLargeError, match=r"^output larger than 1000 bytes$"):
        get(server.url(), server.host_port, max_bytes=1000)


def test_default_cap_reads_as_megabytes(settings, serve):
    server = serve(body(b"x" * 5000))
    settings.DOWNLOAD_MAX_BYTES = 2 * 1024 * 1024
    settings.DOWNLOAD_ALLOW_HTTP = True
    settings.DOWNLOAD_ALLOWED_PRIVATE_HOSTS = [server.host_port]
    assert len(fetch_output(server.url())) == 5000
    with pytest.raises(TooLargeError, match=r"^output larger than 2 MB$"):
        fetch_output("data:image/png;base64," + "A" * (4 * 1024 * 1024))


def test_slow_drip_hits_the_total_time_cap(serve):
    server = serve(drip(total=200, every=0.05))
    started = time.monotonic()
    with pytest.raises(TooSlowError, match=r"^download took longer than 0\.5 s$"):
        get(server.url(), server.host_port, timeout=0.5)
    assert time.monotonic() - started < 1.5


def test_silent_server_hits_the_time_cap():
    fake = FakeProvider().start()
    try:
        url = fake.serve_file("a.png", PNG_BYTES, "image/png")
        fake.faults.push("file", Fault("hang", seconds=5))
        started = time.monotonic()
        with pytest.raises(TooSlowError, match="longer than 0.3 s"):
            get(url, fake.url.removeprefix("http://"), timeout=0.3)
        assert time.monotonic() - started < 1.5
    finally:
        fake.stop()


def test_time_cap_spans_redirects(serve):
    slow = serve(drip(total=10, every=0.1))
    server = serve(redirect(slow.url()))
    with pytest.raises(TooSlowError):
        get(server.url(), server.host_port, slow.host_port, timeout=0.5)


# ---------------------------------------------------------------- failures
def test_endless_redirects_give_up(serve):
    server = serve(redirect("/again"))
    with pytest.raises(DownloadError, match=r"^gave up after 5 redirects$"):
        get(server.url(), server.host_port)
    assert len(server.requests) == 6


def test_error_status_is_reported(serve):
    server = serve(body(b"gone", status=404))
    with pytest.raises(DownloadError, match=r"^HTTP 404 from 127\.0\.0\.1$"):
        get(server.url(), server.host_port)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_busy_host_is_worth_another_try(serve, status):
    server = serve(body(b"busy", status=status))
    with pytest.raises(UnavailableError, match=rf"^HTTP {status} from 127\.0\.0\.1$"):
        get(server.url(), server.host_port)


def test_retry_after_is_kept_when_it_is_seconds(serve):
    def busy(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(429)
        handler.send_header("Retry-After", "7")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server = serve(busy)
    with pytest.raises(UnavailableError) as caught:
        get(server.url(), server.host_port)
    assert caught.value.retry_after == 7


def test_a_missing_file_is_not_retried(serve):
    server = serve(body(b"gone", status=404))
    with pytest.raises(DownloadError) as caught:
        get(server.url(), server.host_port)
    assert not isinstance(caught.value, UnavailableError)


def test_body_cut_short_fails(serve):
    server = serve(cut_short)
    with pytest.raises(DownloadError, match=r"^download from 127\.0\.0\.1 failed"):
        get(server.url(), server.host_port)


def test_refused_connection_fails():
    port = free_port()
    with pytest.raises(UnavailableError, match=r"failed: ConnectError"):
        get(f"http://127.0.0.1:{port}/a.png", f"127.0.0.1:{port}")


def test_download_errors_are_media_errors():
    assert issubclass(DownloadError, MediaError)


# ---------------------------------------------------------------- data URIs
def test_small_base64_data_uri_is_decoded():
    uri = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
    assert get(uri) == PNG_BYTES


@pytest.mark.parametrize(
    ("uri", "error", "message"),
    [
        ("data:image/png;base64," + "QUFB" * 1000, TooLargeError,
         "output larger than 100 bytes"),
        ("data:image/png;base64,@@@@", DownloadError, "malformed data: URI"),
        ("data:text/plain,hello", RefusedURLError, "not base64"),
    ],
)
def test_bad_data_uris_are_refused(uri, error, message):
    with pytest.raises(error, match=message):
        get(uri, max_bytes=100)


def test_redirect_to_a_data_uri_is_refused(serve):
    server = serve(redirect("data:image/png;base64,AAAA"))
    with pytest.raises(RefusedURLError, match="data URLs are not fetched"):
        get(server.url(), server.host_port)


# ---------------------------------------------------------------- TLS
@pytest.fixture
def tls(tmp_path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for ``files.test`` and a client context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "files.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("files.test")]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return server, ssl.create_default_context(cadata=pem.decode())


def test_https_to_a_pinned_address_still_verifies_the_name(serve, resolver, tls):
    server_context, client_context = tls
    server = serve(body(PNG_BYTES), tls=server_context)
    resolver.answers["files.test"] = [["127.0.0.1"]]
    url = server.url(host="files.test")
    data = get(url, server.host_port, allow_http=False, ssl_context=client_context)
    assert data == PNG_BYTES
    assert server.server_names == ["files.test"]
    assert resolver.lookups == ["files.test"]


def test_https_certificate_for_another_name_is_refused(serve, resolver, tls):
    server_context, client_context = tls
    server = serve(body(PNG_BYTES), tls=server_context)
    resolver.answers["other.test"] = [["127.0.0.1"]]
    with pytest.raises(DownloadError, match="CERTIFICATE_VERIFY_FAILED"):
        get(server.url(host="other.test"), server.host_port,
            allow_http=False, ssl_context=client_context)


def test_https_redirect_to_http_is_refused(serve, resolver, tls):
    server_context, client_context = tls
    server = serve(redirect("http://files.test/a.png"), tls=server_context)
    resolver.answers["files.test"] = [["127.0.0.1"]]
    with pytest.raises(
        RefusedURLError,
        match=r"^refused redirect to http://files\.test/a\.png: http URLs are not",
    ):
        get(server.url(host="files.test"), server.host_port,
            allow_http=False, ssl_context=client_context)
