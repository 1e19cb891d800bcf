"""A viewer (or a relay node) on a Vigil media endpoint with pyzmq, as docs/protocol.md tells:
DEALER sockets over CURVE under one certificate's keys, bus envelopes, the reply found by its id
among the stream's other messages. Used by the relay tests' inline scripts."""
import json

import zmq
import zmq.auth


class MediaClient:
    def __init__(self, certificate):
        self.public, self.secret = zmq.auth.load_certificate(certificate)
        self.context = zmq.Context()

    def connect(self, endpoint, server_key):
        """A DEALER to `endpoint`, whose server key is `server_key` (Z85 bytes)."""
        socket = self.context.socket(zmq.DEALER)
        socket.curve_publickey, socket.curve_secretkey, socket.curve_serverkey = self.public, self.secret, server_key
        socket.connect(endpoint)
        return socket


def request(socket, id, op, body, timeout_ms=15000):
    """Sends one request and returns its reply ({} after `timeout_ms` without it)."""
    socket.send(json.dumps({"v": 1, "id": id, "op": op, "body": body}).encode())
    while socket.poll(timeout_ms):
        frames = socket.recv_multipart()
        reply = json.loads(frames[0])
        if len(frames) == 1 and reply.get("id") == id:
            return reply
    return {}
