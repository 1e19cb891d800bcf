"""A pyzmq client written from docs/protocol.md, used by the end-to-end tests.

    bus_session.py SERVER_JSON SERVER_KEY CLIENT_CERT REQUESTS_JSON [TOPIC ...]

Connects a DEALER and a SUB with CURVE using the client's certificate, subscribes to the
topics (and to heartbeats, to know that the subscriptions are live), then sends each request
of REQUESTS_JSON (a list of {"op": ..., "body": ...}) in turn, waiting for its reply. It
prints one JSON object: the replies in order and the events received until one second after
the last reply (BUS_SESSION_LINGER seconds, when set), or until an event of type
BUS_SESSION_UNTIL arrived, when set. "subscribed" on stderr says that the subscriptions are live.
"""
import os
import json
import sys
import time

import zmq
import zmq.auth

from curve_sockets import connect

client_public, client_secret = zmq.auth.load_certificate(sys.argv[3])
requests = json.load(open(sys.argv[4]))
topics = sys.argv[5:]

context, dealer, sub = connect(sys.argv[1], sys.argv[2], client_public, client_secret)
for topic in topics + ["heartbeat/"]:
    sub.setsockopt(zmq.SUBSCRIBE, topic.encode())

events = []
until = os.environ.get("BUS_SESSION_UNTIL")


def receive_events(timeout_ms):
    """Keeps the channel events that arrive within timeout_ms (heartbeats are dropped)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        remaining = max(0, int((deadline - time.monotonic()) * 1000))
        if not sub.poll(remaining):
            return
        topic, payload = sub.recv_multipart()
        if topic == b"heartbeat/":
            continue
        # A batched subscription (batch:TOPIC) brings several events to a message, in order.
        batched = topic.startswith(b"batch:")
        for event in json.loads(payload) if batched else [json.loads(payload)]:
            events.append({"topic": topic.decode()[len("batch:"):] if batched else topic.decode(), "event": event, "batched": batched})
            if until and event.get("type") == until:
                return


# A heartbeat proves the subscriptions are in place.
deadline = time.monotonic() + 30
while time.monotonic() < deadline and not sub.poll(100):
    pass
receive_events(0)
print("subscribed", file=sys.stderr, flush=True)

replies = []
for number, request in enumerate(requests):
    dealer.send(json.dumps({"v": 1, "id": "req-%d" % number, "op": request["op"], "body": request.get("body", {})}).encode())
    if not dealer.poll(30000):
        replies.append({"timeout": True})
        break
    replies.append(json.loads(dealer.recv()))
    receive_events(0)
receive_events(int(float(os.environ.get("BUS_SESSION_LINGER", "1")) * 1000))
print(json.dumps({"replies": replies, "events": events}))
context.destroy(linger=0)
