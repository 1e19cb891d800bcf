"""Fuzzes the command endpoint of a running `vigil serve` with random and mutated messages.

    fuzz_bus.py DATA_FOLDER COUNT [SEED] [command|media]

Authenticates with an agency certificate, then sends COUNT messages in batches: random bytes,
mutated valid requests (flipped, truncated, spliced bytes), wrong types, unknown operations,
oversize ids, other versions, several frames, deeply nested JSON, replayed ids and, now and
then, a message over the 1 MiB limit (the server drops that connection; the fuzzer reconnects).
Finally a valid request must succeed. Prints one JSON line: counts, error codes seen, rate.
Exit status 1 when the server stopped answering.

The command endpoint by default; with `media`, the relay's media endpoint (its own ROUTER and
requests: feed.open, feed.link, feed.close, feed.upstream, footage.fetch), as the agency, which
may not open a view (only named users may): no stream starts, every request is answered.
"""
import collections
import json
import os
import random
import sys
import time

import zmq
import zmq.auth

data, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
endpoint = sys.argv[4] if len(sys.argv) > 4 else "command"
if endpoint not in ("command", "media"):
    sys.exit("the endpoint is command or media, not %r" % endpoint)
server = json.load(open(os.path.join(data, "server.json")))
server_public, _ = zmq.auth.load_certificate(os.path.join(data, "keys", "server.key"))
public, secret = zmq.auth.load_certificate(os.path.join(data, "keys", "agencies", "pz-5339.key_secret"))
context = zmq.Context()


def connect():
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SNDHWM, 100_000)
    socket.curve_serverkey, socket.curve_publickey, socket.curve_secretkey = server_public, public, secret
    socket.connect(server[endpoint])
    return socket


VALID = [
    {"op": "incident.snapshot", "body": {"incident": 1}},
    {"op": "incident.open", "body": {"kind": "fire", "at": {"lat": 50.8467, "lon": 4.3525}, "radius_meters": 100}},
    {"op": "incident.redraw", "body": {"incident": 1, "at": {"lat": 50.85, "lon": 4.35}, "radius_meters": 80}},
    {"op": "incident.update", "body": {"incident": 1, "severity": "Severe"}},
    {"op": "access.check", "body": {"camera": "pz5339-street-0001", "mode": "live"}},
    {"op": "grant.list", "body": {}},
    {"op": "hold.list", "body": {}},
    {"op": "session.identity", "body": {}},
]
JUSTIFICATION = {"reason": "public-order", "text": "Fuzzing the media endpoint", "incident": 1}
VALID_MEDIA = [
    {"op": "feed.open", "body": {"camera": "pz5339-street-0001", "justification": JUSTIFICATION}},
    {"op": "feed.open", "body": {"camera": "pz5339-street-0001", "justification": JUSTIFICATION, "at": "2026-01-01T00:00:00Z", "delivery": "sealed"}},
    {"op": "feed.link", "body": {"camera": "pz5339-street-0001", "justification": JUSTIFICATION, "site": "x"}},
    {"op": "feed.close", "body": {"view": "nosuchview"}},
    {"op": "feed.upstream", "body": {"camera": "pz5339-street-0001", "ticket": "x"}},
    {"op": "footage.fetch", "body": {"ticket": "x"}},
]
if endpoint == "media":
    VALID = VALID_MEDIA
# The largest request an endpoint reads (ZMQ_MAXMSGSIZE): a larger one drops the connection.
MAXIMUM_MESSAGE = 1024 * 1024 if endpoint == "command" else 64 * 1024
numbers = itertools_count = iter(range(1, 1 << 62))


def envelope(request, **changes):
    message = {"v": 1, "id": "f-%d" % next(numbers), "op": request["op"], "body": request["body"]}
    message.update(changes)
    return json.dumps(message).encode()


def mutate(blob):
    blob = bytearray(blob)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        position = rng.randrange(len(blob)) if blob else 0
        if choice < 0.4 and blob:
            blob[position] = rng.randrange(256)
        elif choice < 0.6:
            blob[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice < 0.8 and blob:
            del blob[position:position + rng.randint(1, 16)]
        else:
            blob = blob[:position]
    return bytes(blob)


def wrong_types(request):
    body = dict(request["body"])
    if body:
        key = rng.choice(list(body))
        body[key] = rng.choice([None, True, -1, 1e308, "x" * rng.randint(0, 300), [], {}, [1, [2, [3]]]])
    return {"op": request["op"], "body": body}


def message():
    kind = rng.random()
    request = rng.choice(VALID)
    if kind < 0.15:
        return "random", [bytes(rng.randrange(256) for _ in range(rng.randint(0, 512)))]
    if kind < 0.45:
        return "mutated", [mutate(envelope(request))]
    if kind < 0.60:
        return "wrong_types", [envelope(wrong_types(request))]
    if kind < 0.65:
        return "unknown_op", [envelope({"op": "x." + str(rng.random()), "body": {}})]
    if kind < 0.70:
        return "bad_envelope", [rng.choice([
            envelope(request, v=2), envelope(request, id="i" * 200), envelope(request, op=7), envelope(request, body=[1, 2]),
            b"null", b"[]", b"{}", b'{"v":1}', "\"\udcff\"".encode("utf-8", "surrogatepass"),
        ])]
    if kind < 0.75:
        return "frames", [envelope(request)] * rng.randint(2, 4)
    if kind < 0.78:
        depth = rng.choice([100, 1000, 100_000 if endpoint == "command" else 30_000])
        return "nested", [b'{"v":1,"id":"n","op":"incident.open","body":' + b"[" * depth + b"]" * depth + b"}"]
    if kind < 0.80:
        replayed = envelope(request)
        return "replayed", [replayed, replayed]
    return "valid_random", [envelope({"op": request["op"], "body": wrong_types(request)["body"] if rng.random() < 0.5 else request["body"]})]


def count_replies(first_wait, quiet):
    """Reads replies, counting their codes, until none came for `quiet` seconds (`first_wait` for the first)."""
    global replies
    deadline = time.monotonic() + first_wait
    while socket.poll(max(0, int((deadline - time.monotonic()) * 1000))):
        reply = socket.recv()
        replies += 1
        try:
            codes[(json.loads(reply).get("error") or {}).get("code") or "ok"] += 1
        except ValueError:
            codes["unreadable_reply"] += 1
        deadline = time.monotonic() + quiet


socket = connect()
sent = collections.Counter()
codes = collections.Counter()
replies = 0
oversize_every = 25_000
started = time.monotonic()
remaining = count
while remaining > 0:
    batch = min(200, remaining)
    for number in range(batch):
        index = count - remaining + number
        if index and index % oversize_every == 0:
            socket.send(b"x" * (MAXIMUM_MESSAGE + 10))  # the server drops this connection
            sent["oversize"] += 1
            socket.close(linger=0)
            socket = connect()
            continue
        kind, frames = message()
        sent[kind] += 1
        if kind == "replayed":
            socket.send(frames[0])
            socket.send(frames[1])
        else:
            socket.send_multipart(frames)
    remaining -= batch
    count_replies(first_wait=0.5, quiet=0.05)
# Every request is answered: collect the replies still on their way (until none came for 2 s).
count_replies(first_wait=2, quiet=2)
elapsed = time.monotonic() - started

# After all of that, a valid request still succeeds. The server may still be working through
# the queue of fuzz requests (and answer `server_busy` while it is full): ask again until it answers.
alive = False
deadline = time.monotonic() + 60
attempt = 0
while not alive and time.monotonic() < deadline:
    attempt += 1
    # On the media endpoint, closing a view that does not exist is answered view_not_found.
    final = {"op": "session.identity", "body": {}} if endpoint == "command" else {"op": "feed.close", "body": {"view": "nosuchview"}}
    socket.send(json.dumps({"v": 1, "id": "final-%d" % attempt, **final}).encode())
    answer_by = time.monotonic() + 5
    while time.monotonic() < answer_by and socket.poll(int((answer_by - time.monotonic()) * 1000)):
        reply = json.loads(socket.recv())
        if reply.get("id") == "final-%d" % attempt:
            if endpoint == "command":
                alive = reply.get("ok") is True and reply["result"]["agency"] == "pz-5339"
            else:
                alive = (reply.get("error") or {}).get("code") == "view_not_found"
            break
    if not alive:
        time.sleep(0.5)
print(json.dumps({"messages": count, "sent": dict(sent), "replies": replies, "codes": dict(codes),
                  "seconds": round(elapsed, 2), "messages_per_second": round(count / elapsed), "served_after": alive}, sort_keys=True))
context.destroy(linger=0)
sys.exit(0 if alive else 1)
