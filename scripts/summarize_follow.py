"""Prints one short line per JSON line of `vigil follow` (used by scripts/demo)."""
import json
import sys

who = sys.argv[1]
for line in sys.stdin:
    message = json.loads(line)
    if message.get("type") == "snapshot":
        incident, cameras = message["incident"], message["cameras"]
        names = ", ".join(camera["id"] for camera in cameras[:4])
        print(f"  [{who}] snapshot seq {message['seq']}: incident {incident['id']} {incident['kind']} "
              f"{incident['status']}, {len(cameras)} cameras: {names}, ...", flush=True)
    else:
        body = message["body"]
        print(f"  [{who}] {message['type']} seq {message['seq']} by {body['actor']}: "
              f"+{len(body['added'])} -{len(body['removed'])} cameras", flush=True)
