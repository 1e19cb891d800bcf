"""A client that uses the wrong server key: its CURVE handshake fails before the ZAP handler is
asked, so only the server's socket monitor sees it. Usage: wrong_server_key.py SERVER_JSON.
Prints whether any reply came (it must not)."""
import json
import sys

import zmq

server = json.load(open(sys.argv[1]))
public, secret = zmq.curve_keypair()
wrong_server_key, _ = zmq.curve_keypair()
context = zmq.Context()
socket = context.socket(zmq.DEALER)
socket.setsockopt(zmq.LINGER, 0)
socket.curve_serverkey, socket.curve_publickey, socket.curve_secretkey = wrong_server_key, public, secret
socket.connect(server["command"])
socket.send(b'{"v": 1, "id": "w-1", "op": "session.identity", "body": {}}')
print(json.dumps({"replied": bool(socket.poll(1500))}))
context.destroy(linger=0)
