"""A hostile ingest target: a real HTTP server on loopback that answers as its path says.

Each behaviour is a path, so every test target gets its own URL and no shared script
(query values are Latin-1, so any byte can be asked for):

    /ok                          200 {"ok": true, "status": "accepted"}
    /status?code=N&line=TEXT     status line ``HTTP/1.1 N TEXT`` (or ``line`` verbatim);
                                 ``body=TEXT``, or ``nest=n``: a body of n times "["
    /headers?code=N&h=Name:value repeated ``h`` for repeated headers; ``long=Name:c:n`` adds
                                 a header of ``n`` times ``c``, ``many=n`` n headers more
    /huge?bytes=N[&chunked=1]    200 with N bytes of body, written until the client leaves
    /drip?interval=S&body=TEXT   headers at once, then the body one byte every S seconds
    /drip-headers?interval=S     the status line and headers one byte every S seconds
    /silent                      reads the request, never answers
    /close-mid-body              promises 100 bytes, sends 10, closes
    /redirect?code=N             N with a Location to /ok (which must never be asked for)
    /raw?data=TEXT               writes TEXT (not HTTP) and closes

``requests`` lists what was asked, with how many body bytes were written before the
client went away (``sent``): a client that drains a huge reply shows here.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

OK_BODY = b'{"ok":true,"status":"accepted"}'


@dataclass
class Request:
    path: str
    sent: int = 0
    done: bool = False


class HostileReceiver:
    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, behaviour: str, **params: object) -> str:
        query = urlencode(params, doseq=True, encoding="latin-1")
        return f"http://127.0.0.1:{self.port}/{behaviour}" + (f"?{query}" if query else "")

    def seen(self, behaviour: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if urlsplit(r.path).path == f"/{behaviour}"]

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            reader = conn.makefile("rb")
            try:
                while not self.stopping.is_set():
                    path = _read_request(reader)
                    if path is None:
                        return
                    request = Request(path)
                    with self.lock:
                        self.requests.append(request)
                    if not self._answer(conn, request):
                        return
            except OSError:
                return

    def _answer(self, conn: socket.socket, request: Request) -> bool:
        """Answer one request; False when the connection must not be used again."""
        parts = urlsplit(request.path)
        lists = parse_qs(parts.query, encoding="latin-1")
        query = {k: v[-1] for k, v in lists.items()}
        name = parts.path.strip("/")
        if name == "ok":
            conn.sendall(_head(200, [("Content-Type", "application/json")], len(OK_BODY))
                         + OK_BODY)
            request.done = True
            return True
        if name in ("status", "headers"):
            headers = [tuple(h.split(":", 1)) for h in lists.get("h", [])]
            if "long" in query:
                header, char, count = query["long"].split(":")
                headers.append((header, char * int(count)))
            headers += [(f"X-Extra-{i}", "v") for i in range(int(query.get("many", "0")))]
            body = query.get("body", "{}").encode("latin-1")
            if "nest" in query:
                body = b"[" * int(query["nest"])
            line = query.get("line")
            head = (line.encode("latin-1") + b"\r\n" + _fields(headers, len(body))) if line \
                else _head(int(query.get("code", "200")), headers, len(body))
            conn.sendall(head + body)
            request.done = True
            return True
        if name == "huge":
            self._huge(conn, request, int(query["bytes"]), chunked="chunked" in query)
            return False
        if name == "drip":
            body = query.get("body", OK_BODY.decode()).encode("latin-1")
            conn.sendall(_head(200, [], len(body)))
            self._drip(conn, request, body, float(query["interval"]))
            return False
        if name == "drip-headers":
            self._drip(conn, request, _head(200, [], 2) + b"{}", float(query["interval"]))
            return False
        if name == "silent":
            self.stopping.wait(120)
            return False
        if name == "close-mid-body":
            conn.sendall(_head(200, [], 100) + b"0123456789")
            return False
        if name == "redirect":
            conn.sendall(_head(int(query.get("code", "302")),
                               [("Location", f"http://127.0.0.1:{self.port}/ok")], 0))
            return True
        if name == "raw":
            conn.sendall(query.get("data", "").encode("latin-1"))
            return False
        conn.sendall(_head(404, [], 0))
        return True

    def _huge(self, conn: socket.socket, request: Request, size: int, *, chunked: bool) -> None:
        block = b"0" * 65536
        conn.sendall(_head(200, [("Transfer-Encoding", "chunked")], None) if chunked
                     else _head(200, [], size))
        while request.sent < size and not self.stopping.is_set():
            n = min(len(block), size - request.sent)
            conn.sendall(b"%x\r\n%s\r\n" % (n, block[:n]) if chunked else block[:n])
            request.sent += n
        if chunked:
            conn.sendall(b"0\r\n\r\n")
        request.done = True

    def _drip(self, conn: socket.socket, request: Request, data: bytes, interval: float) -> None:
        for i in range(len(data)):
            if self.stopping.wait(interval):
                return
            conn.sendall(data[i:i + 1])
            request.sent += 1
        request.done = True


def _read_request(reader: object) -> str | None:
    """Read one request; return its target (path and query), None at the end."""
    line = reader.readline(65537)  # type: ignore[attr-defined]
    if not line:
        return None
    length = 0
    while (header := reader.readline(65537)) not in (b"\r\n", b"\n", b""):  # type: ignore[attr-defined]
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    reader.read(length)  # type: ignore[attr-defined]
    return line.split()[1].decode("latin-1")


def _fields(headers: list[tuple[str, ...]], length: int | None) -> bytes:
    lines = [f"{k}: {v}" for k, v in headers]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return "".join(f"{line}\r\n" for line in lines).encode("latin-1") + b"\r\n"


def _head(status: int, headers: list[tuple[str, ...]], length: int | None) -> bytes:
    return f"HTTP/1.1 {status} Whatever\r\n".encode() + _fields(headers, length)
