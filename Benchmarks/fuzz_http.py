"""Fuzzes the HTTP endpoints of a running `vigil serve` (the links port and the metrics port,
both Vigil's own HTTP/1.1 reader) with malformed, mutated and slow requests.

    fuzz_http.py DATA_FOLDER COUNT [SEED]

First a fixed set of cases, each with the one status it must get (bad request lines, other
methods, heads over 8 KiB, heads that never end, a client that trickles its head, bare-LF
heads, odd paths, WebSocket handshakes on unknown links). Then COUNT random and mutated
requests, each of which must get a well-formed HTTP/1.1 answer with a status the endpoint
documents, never silence and never a 5xx other than 503. Finally both endpoints must still
serve a valid request. Prints one JSON line: counts per status, the fixed cases that got
another status, and whether the server still served. Exit status 1 on any failure.
"""
import collections
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse

data, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
server = json.load(open(os.path.join(data, "server.json")))


def address(url):
    parsed = urllib.parse.urlsplit(url)
    return parsed.hostname, parsed.port


LINKS, METRICS = address(server["http"]), address(server["metrics"])
DOCUMENTED = {200, 400, 404, 405, 408, 426, 431, 503}


def exchange(where, payload, close_write=True, trickle=None):
    """Sends `payload` (all at once, or one byte every `trickle` seconds), then reads the answer
    until the server closes. Returns the status (None without a well-formed status line)."""
    connection = socket.create_connection(where, timeout=10)
    try:
        if trickle is None:
            connection.sendall(payload)
        else:
            for byte in payload:
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    break  # the server answered and closed: read what it said
                time.sleep(trickle)
        if close_write:
            try:
                connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        answer = b""
        while len(answer) < 65536:
            try:
                chunk = connection.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    finally:
        connection.close()
    line = answer.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(line) < 2 or line[0] != b"HTTP/1.1" or not line[1].isdigit():
        return None
    return int(line[1])


VALID = [
    b"GET /views/nosuchtoken/stream.ts HTTP/1.1\r\nHost: vigil\r\nUser-Agent: fuzz\r\n\r\n",
    b"HEAD /views/nosuchtoken/thumbnail.jpg HTTP/1.1\r\nHost: vigil\r\n\r\n",
    b"GET /views/nosuchtoken/live HTTP/1.1\r\nHost: vigil\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n",
]

# (what, endpoint, payload, expected status, options)
CASES = [
    ("unknown link", LINKS, VALID[0], 404, {}),
    ("bare LF lines", LINKS, b"GET /views/x/stream.ts HTTP/1.1\nHost: vigil\n\n", 404, {}),
    ("HTTP/1.0", LINKS, b"GET /views/x/stream.ts HTTP/1.0\r\n\r\n", 404, {}),
    ("path traversal", LINKS, b"GET /views/../../etc/passwd HTTP/1.1\r\n\r\n", 404, {}),
    ("NUL in the path", LINKS, b"GET /views/\x00/stream.ts HTTP/1.1\r\n\r\n", 404, {}),
    ("a 6,000-byte path", LINKS, b"GET /views/" + b"a" * 6000 + b"/stream.ts HTTP/1.1\r\n\r\n", 404, {}),
    ("not UTF-8", LINKS, b"GET /views/\xff\xfe/stream.ts HTTP/1.1\r\n\r\n", 404, {}),
    ("WebSocket on an unknown link", LINKS, VALID[2], 404, {}),
    ("POST", LINKS, b"POST /views/x/stream.ts HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, {}),
    ("CONNECT", METRICS, b"CONNECT vigil:443 HTTP/1.1\r\n\r\n", 400, {}),
    ("lower-case method", LINKS, b"get /views/x/stream.ts HTTP/1.1\r\n\r\n", 405, {}),
    ("HTTP/2 preface", LINKS, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, {}),
    ("HTTP/0.9", LINKS, b"GET /\r\n\r\n", 400, {}),
    ("no version", METRICS, b"GET /metrics\r\n\r\n", 400, {}),
    ("two spaces", LINKS, b"GET  /views/x/stream.ts HTTP/1.1\r\n\r\n", 400, {}),
    ("a field without a colon", LINKS, b"GET /views/x/stream.ts HTTP/1.1\r\nHost vigil\r\n\r\n", 400, {}),
    ("space before the colon", LINKS, b"GET /views/x/stream.ts HTTP/1.1\r\nHost : vigil\r\n\r\n", 400, {}),
    ("a 9,000-byte head", LINKS, b"GET /views/x/stream.ts HTTP/1.1\r\nX-Pad: " + b"p" * 9000 + b"\r\n\r\n", 431, {}),
    ("an endless head", METRICS, b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 3000, 431, {}),
    ("a head cut short", LINKS, b"GET /views/x/stream.ts HTTP/1.1\r\nHost: vi", 400, {}),
    ("nothing at all", LINKS, b"", 400, {}),
    ("a head that stops", LINKS, b"GET /views/x/stream.ts HTTP/1.1\r\n", 408, {"close_write": False}),
    ("a trickled head", LINKS, b"GET /views/x/stream.ts HTTP/1.1\r\n" + b"X: y\r\n" * 20, 408, {"trickle": 0.25}),
]


def mutate(blob):
    blob = bytearray(blob)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if not blob:
            blob += bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
        elif choice < 0.35:
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        elif choice < 0.55:
            del blob[rng.randrange(len(blob)):]
        elif choice < 0.75:
            at = rng.randrange(len(blob) + 1)
            blob[at:at] = rng.choice([b"\r\n", b"\n", b" ", b":", b"\x00", b"%", b"/..", b"\r\n\r\n", rng.choice(VALID)])
        else:
            at = rng.randrange(len(blob))
            del blob[at:at + rng.randint(1, 12)]
    return bytes(blob)


def random_request():
    kind = rng.random()
    if kind < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 400))) + rng.choice([b"", b"\r\n\r\n"])
    if kind < 0.3:
        method = rng.choice([b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE", b"G", b"GETT", b"head"])
        return method + b" /views/x/stream.ts HTTP/1.1\r\n\r\n"
    if kind < 0.4:
        return b"GET /views/x/stream.ts HTTP/1.1\r\n" + b"".join(
            b"X-%d: %s\r\n" % (i, b"v" * rng.randint(0, 600)) for i in range(rng.randint(1, 40))) + b"\r\n"
    return mutate(rng.choice(VALID))


failures = []
statuses = collections.Counter()
slow = []


def check_case(case):
    what, where, payload, expected, options = case
    status = exchange(where, payload, **options)
    statuses[status] += 1
    if status != expected:
        failures.append({"case": what, "expected": expected, "got": status})


# The slow cases hold a request slot each for up to 2 s: run them beside the others.
for case in CASES:
    if case[4]:
        thread = threading.Thread(target=check_case, args=(case,))
        thread.start()
        slow.append(thread)
    else:
        check_case(case)

started = time.monotonic()
for _ in range(count):
    status = exchange(rng.choice([LINKS, LINKS, METRICS]), random_request())
    statuses[status] += 1
    if status not in DOCUMENTED:
        failures.append({"random": True, "got": status})
for thread in slow:
    thread.join()
elapsed = time.monotonic() - started

served_after = exchange(LINKS, VALID[0]) == 404 and exchange(METRICS, VALID[3]) == 200
print(json.dumps({
    "sent": count + len(CASES),
    "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda item: str(item[0]))},
    "failures": failures[:20],
    "failure_count": len(failures),
    "served_after": served_after,
    "requests_per_second": round(count / max(elapsed, 1e-9)),
}))
sys.exit(0 if served_after and not failures else 1)
