"""Plays a view's browser stream (`ws://HOST:PORT/views/TOKEN/live`) as a browser would open it,
with the standard library only: the RFC 6455 handshake (its accept value checked), then the
server's binary messages for SECONDS, written one after another to OUTPUT (fragmented MP4).

Prints one JSON line: the handshake's status, the messages read, whether the first began with
an initialization segment (ftyp then moov), whether every later keyframe message did, and how
the stream ended (close code, or "open" when the time ran out).

usage: browser_socket.py URL OUTPUT SECONDS
"""
import base64, hashlib, json, os, socket, sys, time, urllib.parse

url, output, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
parts = urllib.parse.urlsplit(url)
connection = socket.create_connection((parts.hostname, parts.port), timeout=10)
key = base64.b64encode(os.urandom(16)).decode()
connection.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{parts.netloc}\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    more = connection.recv(1)
    if not more:
        break
    head += more
lines = head.decode(errors="replace").split("\r\n")
status = int(lines[0].split()[1]) if len(lines[0].split()) > 1 else 0
headers = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip() for line in lines[1:] if ":" in line}
expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
result = {"status": status, "accept_ok": headers.get("sec-websocket-accept") == expected, "messages": 0,
          "starts_with_init": False, "ended": "open", "unmasked": True}
if status != 101:
    print(json.dumps(result))
    sys.exit(0)

buffer = b""
def read(count):
    global buffer
    while len(buffer) < count:
        more = connection.recv(65536)
        if not more:
            raise EOFError
        buffer += more
    taken, buffer = buffer[:count], buffer[count:]
    return taken

deadline = time.monotonic() + seconds
with open(output, "wb") as out:
    try:
        while time.monotonic() < deadline:
            connection.settimeout(max(0.1, deadline - time.monotonic()))
            first, second = read(2)
            if second & 0x80:
                result["unmasked"] = False
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(read(2), "big")
            elif length == 127:
                length = int.from_bytes(read(8), "big")
            payload = read(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                result["ended"] = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                break
            if opcode != 0x2:
                continue
            if result["messages"] == 0:
                result["starts_with_init"] = payload[4:8] == b"ftyp" and b"moov" in payload
            result["messages"] += 1
            out.write(payload)
    except socket.timeout:
        pass
    except (EOFError, ConnectionError):
        result["ended"] = "closed"
print(json.dumps(result))
