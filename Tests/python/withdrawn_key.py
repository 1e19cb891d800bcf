"""A client whose key is withdrawn while it is connected (docs/protocol.md, "Withdrawn keys").

    withdrawn_key.py SERVER_JSON SERVER_KEY CLIENT_CERT SIGNAL_FILE [TOPIC ...]

Connects as the certificate's holder, subscribes to the topics, asks `session.identity`, prints
"subscribed" on stderr, and keeps every event until SIGNAL_FILE exists. Then it asks again on
the same connection and on a fresh one (3 s to answer), keeps events 2 s more, and prints one
JSON object: {"replies": [first, again], "fresh": reply or null, "events": [...]}.
"""
import json
import os
import sys
import time

import zmq
import zmq.auth

from curve_sockets import connect

server_json, server_key, certificate, signal_file = sys.argv[1:5]
topics = sys.argv[5:]
client_public, client_secret = zmq.auth.load_certificate(certificate)
context, dealer, sub = connect(server_json, server_key, client_public, client_secret)
for topic in topics + ["heartbeat/"]:
    sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
events = []


def receive(until):
    while True:
        remaining = until - time.monotonic()
        if remaining <= 0 or not sub.poll(int(remaining * 1000)):
            return
        topic, payload = sub.recv_multipart()
        if topic != b"heartbeat/":
            events.append({"topic": topic.decode(), "event": json.loads(payload)})


def ask(socket, number, timeout_ms):
    socket.send(json.dumps({"v": 1, "id": "withdrawn-%d" % number, "op": "session.identity", "body": {}}).encode())
    return json.loads(socket.recv()) if socket.poll(timeout_ms) else None


deadline = time.monotonic() + 30
while time.monotonic() < deadline and not sub.poll(100):
    pass
replies = [ask(dealer, 1, 30000)]
print("subscribed", file=sys.stderr, flush=True)

deadline = time.monotonic() + 90
while not os.path.exists(signal_file) and time.monotonic() < deadline:
    receive(time.monotonic() + 0.1)
replies.append(ask(dealer, 2, 10000))
_, fresh_dealer, fresh_sub = connect(server_json, server_key, client_public, client_secret)
fresh = ask(fresh_dealer, 3, 3000)
receive(time.monotonic() + 2)
print(json.dumps({"replies": replies, "fresh": fresh, "events": events}))
