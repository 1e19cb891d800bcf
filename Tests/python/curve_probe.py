"""A pyzmq client written from docs/protocol.md, used by the end-to-end tests.

    curve_probe.py SERVER_JSON SERVER_KEY CLIENT_CERT_OR_'random'

Connects a DEALER and a SUB with CURVE, sends an `incident.snapshot` request for incident 1
and tries to subscribe to every topic (the empty prefix, which the server refuses) and to
heartbeats, then prints one JSON line: what it received within 2 seconds. With 'random' it
uses a fresh key pair the server has never seen.
"""
import json
import sys
import time

import zmq
import zmq.auth

from curve_sockets import connect

if sys.argv[3] == "random":
    client_public, client_secret = zmq.curve_keypair()
else:
    client_public, client_secret = zmq.auth.load_certificate(sys.argv[3])

context, dealer, sub = connect(sys.argv[1], sys.argv[2], client_public, client_secret)
sub.setsockopt(zmq.SUBSCRIBE, b"")
sub.setsockopt(zmq.SUBSCRIBE, b"heartbeat/")
dealer.send(json.dumps({"v": 1, "id": "probe-1", "op": "incident.snapshot", "body": {"incident": 1}}).encode())

poller = zmq.Poller()
poller.register(dealer, zmq.POLLIN)
poller.register(sub, zmq.POLLIN)
replies, events = [], []
deadline = time.monotonic() + 2.0
while time.monotonic() < deadline:
    for socket, _ in poller.poll(timeout=100):
        frames = socket.recv_multipart()
        if socket is dealer:
            replies.append(json.loads(frames[0]))
        else:
            events.append(frames[0].decode())
print(json.dumps({"replies": replies, "event_topics": events}))
context.destroy(linger=0)
