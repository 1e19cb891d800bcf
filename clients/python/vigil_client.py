"""A Python client for the Vigil bus, written from docs/protocol.md (version 1) alone.

    client = VigilClient.from_data_folder("vigil-data", "keys/agencies/siamu.key_secret")
    snapshot = client.request("incident.snapshot", {"incident": 4})
    for kind, message in client.follow(4):   # ("snapshot", snapshot) then ("event", event)
        ...

    view = client.watch_sealed("pz5339-sim-01", {"reason": "public-order", "text": "…", "incident": 4})
    for transport_stream in view.frames(seconds=10):   # MPEG-TS bytes, opened with the content keys
        ...

Needs pyzmq (Debian: python3-zmq), and python3-cryptography for sealed views. CURVE
everywhere: the client presents its agency's or user's certificate (ZeroMQ certificate format)
and checks the server's public key.
"""
import itertools
import json
import os
import socket
import struct
import time
import urllib.parse

import zmq
import zmq.auth

PROTOCOL_VERSION = 1
HEARTBEAT_TOPIC = "heartbeat/"
# A subscription to "batch:" + a topic gets the topic's events several to a message (a JSON array).
BATCH_PREFIX = "batch:"


class VigilError(Exception):
    """An error reply: a stable code, a message for people, the field at fault."""

    def __init__(self, code, message, field=None):
        super().__init__("%s: %s" % (code, message))
        self.code, self.message, self.field = code, message, field


class VigilClient:
    def __init__(self, command_endpoint, event_endpoint, server_public_key, certificate_path, context=None):
        self.context = context or zmq.Context.instance()
        self.public, self.secret = zmq.auth.load_certificate(certificate_path)
        if self.secret is None:
            raise ValueError("%s has no secret key" % certificate_path)
        self.server_public_key = server_public_key
        self.command_endpoint, self.event_endpoint = command_endpoint, event_endpoint
        self.dealer = self._socket(zmq.DEALER, command_endpoint)
        self.sub = None
        self._ids = itertools.count(1)

    @classmethod
    def from_data_folder(cls, data, certificate):
        """A client for the server whose data folder is `data` (its server.json and keys/server.key)."""
        with open(os.path.join(data, "server.json")) as f:
            server = json.load(f)
        server_public, _ = zmq.auth.load_certificate(os.path.join(data, "keys", "server.key"))
        client = cls(server["command"], server["events"], server_public, os.path.join(data, certificate))
        client.media_endpoint = server.get("media")
        return client

    def watch_sealed(self, camera, justification, timeout=10.0):
        """Opens a live view of `camera` with delivery "sealed" (docs/protocol.md, "Sealed
        delivery") on the server's media endpoint; returns a SealedView."""
        media = self._socket(zmq.DEALER, self.media_endpoint)
        request_id = "py-%d" % next(self._ids)
        media.send(json.dumps({"v": PROTOCOL_VERSION, "id": request_id, "op": "feed.open",
                               "body": {"camera": camera, "justification": justification, "delivery": "sealed"}}).encode())
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not media.poll(int(remaining * 1000)):
                media.close(linger=0)
                raise TimeoutError("no reply to feed.open within %.1f s" % timeout)
            reply = json.loads(media.recv_multipart()[0])
            if reply.get("id") == request_id:
                break
        if not reply.get("ok"):
            media.close(linger=0)
            error = reply.get("error") or {}
            raise VigilError(error.get("code"), error.get("message"), error.get("field"))
        result = reply["result"]
        if "sealed" not in result:
            media.close(linger=0)
            raise VigilError("bad_reply", "the relay serves this view as packets, not sealed (a redirect, or no HTTP endpoint)")
        return SealedView(media, result)

    def _socket(self, kind, endpoint):
        socket = self.context.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        socket.curve_serverkey = self.server_public_key
        socket.curve_publickey = self.public
        socket.curve_secretkey = self.secret
        socket.connect(endpoint)
        return socket

    def close(self):
        for socket in (self.dealer, self.sub):
            if socket is not None:
                socket.close(linger=0)

    # Commands

    def request(self, op, body=None, timeout=5.0):
        """Sends one request and returns its result, or raises VigilError (or TimeoutError)."""
        request_id = "py-%d" % next(self._ids)
        self.dealer.send(json.dumps({"v": PROTOCOL_VERSION, "id": request_id, "op": op, "body": body or {}}).encode())
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.dealer.poll(int(remaining * 1000)):
                raise TimeoutError("no reply to %s within %.1f s (unknown key, or server down)" % (op, timeout))
            reply = json.loads(self.dealer.recv())
            if reply.get("id") not in (request_id, None):
                continue  # a late reply to an earlier request that timed out
            if reply.get("ok"):
                return reply.get("result")
            error = reply.get("error") or {}
            raise VigilError(error.get("code"), error.get("message"), error.get("field"))

    def identity(self):
        return self.request("session.identity")

    def select_cameras(self, query, timeout=5.0):
        """The cameras of a selection query (radius, nearest, sees, area, route) that this
        agency may watch live now, ranked; confidential ones without a position."""
        return self.request("cameras.select", query, timeout=timeout)["cameras"]

    # Events

    def subscribe(self, *topics, batched=False):
        """Subscribes to `topics`; `batched`: to their batches (`batch:TOPIC`), several events
        to a message when they come together (next_event hands them out one by one)."""
        if self.sub is None:
            self.sub = self._socket(zmq.SUB, self.event_endpoint)
        for topic in topics:
            self.sub.setsockopt(zmq.SUBSCRIBE, ((BATCH_PREFIX if batched else "") + topic).encode())

    def _reconnect_events(self):
        self._batched = []
        if self.sub is not None:
            self.sub.close(linger=0)
            self.sub = None

    def next_event(self, timeout):
        """The next event as (topic, event dict), or None after `timeout` seconds. An event
        of a batch comes with its channel's topic, without the batch: prefix."""
        if getattr(self, "_batched", None):
            return self._batched.pop(0)
        if not self.sub.poll(int(timeout * 1000)):
            return None
        topic, payload = self.sub.recv_multipart()
        topic = topic.decode()
        if not topic.startswith(BATCH_PREFIX):
            return topic, json.loads(payload)
        topic = topic[len(BATCH_PREFIX):]
        self._batched = [(topic, event) for event in json.loads(payload)]
        return self._batched.pop(0)

    def follow(self, incident, heartbeat_timeout=3.0, drop=lambda event: False):
        """Follows an incident's channel in the Clone pattern (docs/protocol.md, "Following a channel").

        Yields ("snapshot", snapshot) first and after every resynchronisation, then ("event", event)
        for each update in sequence; ("resync", reason) says why a new snapshot is taken. Ends
        after the incident's closing event. `drop` lets a test throw an event away, as if lost.
        """
        topic = "incident/%d/%s/" % (incident, self.identity()["agency"])
        held = None  # the last sequence had before a resynchronisation, for the server's count
        while True:  # (re)connect
            self._reconnect_events()
            self.subscribe(topic, HEARTBEAT_TOPIC)
            pending, last = [], None
            deadline = time.monotonic() + heartbeat_timeout
            while True:  # a heartbeat proves the subscriptions are live
                received = self.next_event(max(0.0, deadline - time.monotonic()))
                if received is None:
                    raise TimeoutError("no heartbeat from the server")
                if received[0] == HEARTBEAT_TOPIC:
                    break
                pending.append(received[1])
            while True:
                if last is None:
                    request = {"incident": incident}
                    if held is not None:
                        request["resync_after"] = held
                    snapshot = self.request("incident.snapshot", request)
                    last = snapshot["incident"]["sequence"]
                    yield "snapshot", snapshot
                    if snapshot["incident"]["status"] in ("closed", "cancelled", "archived"):
                        return
                if pending:
                    event = pending.pop(0)
                else:
                    received = self.next_event(heartbeat_timeout)
                    if received is None:
                        yield "resync", "no message for %.0f s: reconnecting" % heartbeat_timeout
                        held = last
                        break
                    if received[0] == HEARTBEAT_TOPIC:
                        continue
                    event = received[1]
                if drop(event) or event["seq"] <= last:
                    continue
                if event["seq"] > last + 1:
                    yield "resync", "gap: expected %d, received %d" % (last + 1, event["seq"])
                    held, last = last, None
                    continue
                last = event["seq"]
                yield "event", event
                if event["type"] == "incident.closed":
                    return


class SealedView:
    """A sealed view: frames read from the relay's HTTP endpoint, opened with the content keys
    the relay sends on this viewer's own CURVE connection (the reply, then content.key messages)."""

    HEADER = struct.Struct(">IIQB")  # length of the rest, key id, counter, flags

    def __init__(self, media, result):
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
        import base64
        self._aead, self._b64 = ChaCha20Poly1305, base64
        self.media, self.view = media, result["view"]
        self.keys = {}
        self.key_ids = []
        self.ended = None  # the relay's reason, once it ended the view
        self.closed = False  # the relay closed the stream
        self._add_key(result["sealed"]["content_key"])
        url = urllib.parse.urlsplit(result["sealed"]["url"])
        self.stream = socket.create_connection((url.hostname, url.port), timeout=10)
        self.stream.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (url.path, url.netloc)).encode())
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.stream.recv(4096)
            if not chunk:
                raise VigilError("sealed_stream_failed", "the relay closed the stream before answering")
            self._buffer += chunk
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 200") or b"application/vnd.vigil.sealed-ts" not in head:
            raise VigilError("sealed_stream_failed", head.decode(errors="replace"))
        self.stream.settimeout(0.05)

    def _add_key(self, key):
        self.keys[key["id"]] = self._aead(self._b64.b64decode(key["key"]))
        self.key_ids.append(key["id"])

    def messages(self):
        """Takes what the relay said on the CURVE connection: new keys, the view's end."""
        while self.media.poll(0):
            message = json.loads(self.media.recv_multipart()[0])
            if message.get("view") != self.view:
                continue
            if message.get("type") == "content.key":
                self._add_key(message["content_key"])
            elif message.get("type") == "feed.ended":
                self.ended = message.get("reason", "ended")

    def raw_frames(self):
        """The whole sealed frames received so far, as bytes (their length field included)."""
        deadline = time.monotonic() + 0.1  # a live stream never pauses long enough to stop on its own
        try:
            while time.monotonic() < deadline:
                chunk = self.stream.recv(65536)
                if not chunk:
                    self.closed = True
                    break
                self._buffer += chunk
        except (socket.timeout, BlockingIOError):
            pass
        except OSError:
            self.closed = True
        frames = []
        while len(self._buffer) >= 4:
            length = struct.unpack(">I", self._buffer[:4])[0]
            if len(self._buffer) < 4 + length:
                break
            frames.append(self._buffer[:4 + length])
            self._buffer = self._buffer[4 + length:]
        return frames

    def open(self, frame, keys=None):
        """The MPEG-TS a frame seals; KeyError for a key not (yet) had, InvalidTag if not authentic."""
        _, key_id, _, _ = self.HEADER.unpack(frame[:17])
        return (keys or self.keys)[key_id].decrypt(frame[4:16], frame[17:], frame[4:17])

    def close(self):
        self.stream.close()
        self.media.close(linger=0)
