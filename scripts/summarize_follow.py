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
        march = body["incident"].get("march")
        where = f" (head {march['head_meters']:.0f} m, tail {march['tail_meters']:.0f} m)" if march else ""
        sections = {}
        for camera in body["added"]:
            sections[camera.get("section", "selected")] = sections.get(camera.get("section", "selected"), 0) + 1
        detail = ", ".join(f"{count} {section}" for section, count in sorted(sections.items()))
        events = f" [{', '.join(body['events'])}]" if body.get("events") else ""
        print(f"  [{who}] {message['type']} seq {message['seq']} by {body['actor']}{where}: "
              f"+{len(body['added'])} ({detail or 'none'}) -{len(body['removed'])}, {len(body.get('relabelled', []))} relabelled{events}",
              flush=True)
