"""Two sealed viewers of one camera, through clients/python/vigil_client.py (pyzmq and
python3-cryptography, written from docs/protocol.md), while the first one's grant is revoked.

    sealed_rotation.py DATA FIRST_CERT SECOND_CERT INCIDENT CAMERA

FIRST joins, then SECOND (the camera's key is replaced: FIRST is sent the new one). Once both
read pictures, "ready" on stderr; the test then revokes FIRST's grant. The script reads on
until FIRST's view has ended and SECOND has read 2 s more, and prints one JSON object: what
each received, and whether FIRST's keys open any frame sealed after it left.
"""
import json
import os
import sys
import time

from cryptography.exceptions import InvalidTag

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
from vigil_client import VigilClient  # noqa: E402

data, first_cert, second_cert, incident, camera = sys.argv[1:6]
justification = {"reason": "public-order", "text": "Following the crowd", "incident": int(incident)}


def pictures(view, frames, keys=None):
    """How many frames open, and whether every one is whole MPEG-TS."""
    opened, whole = 0, True
    for frame in frames:
        transport_stream = view.open(frame, keys)
        opened += 1
        whole = whole and len(transport_stream) % 188 == 0 and transport_stream[0] == 0x47
    return opened, whole


first = VigilClient.from_data_folder(data, first_cert).watch_sealed(camera, justification)
time.sleep(0.5)
first.messages()
first_keys_alone = list(first.key_ids)
second = VigilClient.from_data_folder(data, second_cert).watch_sealed(camera, justification)

report = {"first_key_ids": None, "second_key_ids": None, "first_ended": None, "first_closed": False,
          "first_frames": 0, "second_frames_before": 0, "second_frames_after": 0, "all_whole": True,
          "after_opened_with_first_keys": 0, "after_frames_tried": 0, "first_keys_when_alone": first_keys_alone}
pending = {id(first): [], id(second): []}


def read(view):
    """The frames that can be opened now, in order; those whose key has not come stay pending."""
    view.messages()
    queue = pending[id(view)]
    queue.extend(view.raw_frames())
    ready = []
    while queue and SealedKey(queue[0]) in view.keys:
        ready.append(queue.pop(0))
    return ready


def SealedKey(frame):
    return int.from_bytes(frame[4:8], "big")


deadline = time.monotonic() + 60
said_ready = False
revoked_at_key = None
after_since = None
while time.monotonic() < deadline:
    for frame_set, view in ((read(first), first), (read(second), second)):
        count, whole = pictures(view, frame_set)
        report["all_whole"] = report["all_whole"] and whole
        if view is first:
            report["first_frames"] += count
        elif first.ended is None:
            report["second_frames_before"] += count
        else:
            # Sealed after the first viewer left: its keys must open none of them.
            fresh = [frame for frame in frame_set if SealedKey(frame) not in first.key_ids]
            report["second_frames_after"] += len(fresh)
            for frame in fresh:
                report["after_frames_tried"] += 1
                for key in first.keys.values():  # every key it ever had, whatever id the frame names
                    try:
                        key.decrypt(frame[4:16], frame[17:], frame[4:17])
                        report["after_opened_with_first_keys"] += 1
                    except InvalidTag:
                        pass
    if not said_ready and report["first_frames"] > 10 and report["second_frames_before"] > 10:
        print("ready", file=sys.stderr, flush=True)
        said_ready = True
    if first.ended is not None and after_since is None:
        after_since = time.monotonic()
    if after_since is not None and time.monotonic() - after_since > 2 and report["second_frames_after"] > 10:
        break
    time.sleep(0.02)

first.raw_frames()
report.update(first_key_ids=first.key_ids, second_key_ids=second.key_ids, first_ended=first.ended, first_closed=first.closed)
print(json.dumps(report))
first.close()
second.close()
