"""The connection the probe scripts share, from docs/protocol.md: a DEALER on the command
endpoint and a SUB on the event endpoint, both CURVE with the server's public key."""
import json

import zmq
import zmq.auth


def connect(server_json, server_key_file, client_public, client_secret):
    """Returns (context, dealer, sub) connected to the server described in server_json."""
    server = json.load(open(server_json))
    server_public, _ = zmq.auth.load_certificate(server_key_file)
    context = zmq.Context()
    sockets = []
    for kind, endpoint in ((zmq.DEALER, server["command"]), (zmq.SUB, server["events"])):
        socket = context.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        socket.curve_serverkey = server_public
        socket.curve_publickey = client_public
        socket.curve_secretkey = client_secret
        socket.connect(endpoint)
        sockets.append(socket)
    return (context, *sockets)
