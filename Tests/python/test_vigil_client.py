"""Tests of clients/python/vigil_client.py against a running `vigil serve` (VIGIL_DATA names its
data folder). Run by Tests/EndToEndTests/PythonClientTests.swift."""
import json
import os
import sys
import tempfile
import threading
import unittest
import urllib.request

import zmq.auth

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
from vigil_client import HEARTBEAT_TOPIC, VigilClient, VigilError  # noqa: E402

DATA = os.environ["VIGIL_DATA"]


def client(agency):
    return VigilClient.from_data_folder(DATA, os.path.join("keys", "agencies", agency + ".key_secret"))


class VigilClientTests(unittest.TestCase):
    def test_authenticates_with_a_certificate_and_refuses_unknown_keys(self):
        police = client("pz-5339")
        self.assertEqual(police.identity(), {"agency": "pz-5339", "user": None})
        police.close()
        with tempfile.TemporaryDirectory() as folder:
            _, secret = zmq.auth.create_certificates(folder, "stranger")
            stranger = VigilClient.from_data_folder(DATA, secret)
            with self.assertRaises(TimeoutError):
                stranger.request("session.identity", timeout=1.0)
            stranger.close()

    def test_an_identity_request_answered_at_once_still_refuses_a_replayed_id(self):
        # `session.identity` is answered on the server's bus thread; its id is checked all the same.
        police = client("pz-5339")
        request = json.dumps({"v": 1, "id": "identity-once", "op": "session.identity", "body": {}}).encode()
        replies = []
        for _ in range(2):
            police.dealer.send(request)
            self.assertTrue(police.dealer.poll(5000), "answered")
            replies.append(json.loads(police.dealer.recv()))
        self.assertEqual(replies[0]["result"], {"agency": "pz-5339", "user": None})
        self.assertEqual(replies[1]["error"]["code"], "request_replayed")
        police.close()

    def test_sends_commands_and_reads_structured_errors(self):
        police = client("pz-5339")
        opened = police.request("incident.open", {"kind": "traffic", "at": {"lat": 50.8467, "lon": 4.3525}, "radius_meters": 300})
        self.assertEqual(opened["incident"]["lead_agency"], "pz-5339")
        self.assertGreater(len(opened["cameras"]), 0)
        for op, body, code, field in [
            ("incident.fly", {}, "unknown_operation", "op"),
            ("incident.open", {"kind": "traffic", "at": {"lat": 50.8, "lon": 4.35}, "radius_meters": -5}, "radius_invalid", None),
            ("incident.open", {"kind": "traffic", "at": {"lat": "north", "lon": 4.35}, "radius_meters": 5}, "bad_request", "body.at.lat"),
            ("incident.update", {"incident": opened["incident"]["id"], "status": "draft"}, "status_transition_invalid", "status"),
        ]:
            with self.assertRaises(VigilError) as raised:
                police.request(op, body)
            self.assertEqual(raised.exception.code, code, raised.exception)
            if field:
                self.assertEqual(raised.exception.field, field)
        police.request("incident.close", {"incident": opened["incident"]["id"]})
        police.close()

    def test_selects_cameras_over_the_bus_without_the_server_host(self):
        police = client("pz-5339")
        near = police.select_cameras({"type": "radius", "at": {"lat": 50.8467, "lon": 4.3525}, "meters": 500})
        self.assertGreater(len(near), 0)
        self.assertTrue(all(camera["reason"] == "within_radius" for camera in near))
        self.assertEqual([c["distance_meters"] for c in near], sorted(c["distance_meters"] for c in near))
        three = police.select_cameras({"type": "nearest", "at": {"lat": 50.8467, "lon": 4.3525}, "count": 3})
        self.assertEqual(len(three), 3)
        with self.assertRaises(VigilError) as raised:
            police.select_cameras({"type": "radius", "at": {"lat": 50.8467, "lon": 4.3525}, "meters": 0})
        self.assertEqual(raised.exception.code, "radius_invalid")
        police.close()

    def test_a_batched_subscription_gets_the_same_events_as_a_plain_one(self):
        lead = client("pz-5339")
        opened = lead.request("incident.open", {"kind": "traffic", "at": {"lat": 50.8467, "lon": 4.3525}, "radius_meters": 60})
        incident = opened["incident"]["id"]
        topic = "incident/%d/pz-5339/" % incident
        plain, batched = client("pz-5339"), client("pz-5339")
        plain.subscribe(topic, HEARTBEAT_TOPIC)
        batched.subscribe(topic, batched=True)
        batched.subscribe(HEARTBEAT_TOPIC)
        for listener in (plain, batched):  # a heartbeat proves the subscriptions are live
            while listener.next_event(10)[0] != HEARTBEAT_TOPIC:
                pass
        for radius in (120, 200, 320):
            lead.request("incident.redraw", {"incident": incident, "at": {"lat": 50.8467, "lon": 4.3525}, "radius_meters": radius})
        lead.request("incident.close", {"incident": incident})

        def events(listener):
            received = []
            while not received or received[-1][1]["type"] != "incident.closed":
                event = listener.next_event(10)
                self.assertIsNotNone(event, received)
                if event[0] != HEARTBEAT_TOPIC:
                    received.append(event)
            return received

        from_plain, from_batches = events(plain), events(batched)
        self.assertEqual(from_batches, from_plain)
        self.assertEqual({topic for topic, _ in from_batches}, {topic})
        self.assertEqual([event["seq"] for _, event in from_batches], sorted(event["seq"] for _, event in from_batches))
        for listener in (lead, plain, batched):
            listener.close()

    def test_follows_a_channel_through_a_forced_gap(self):
        lead = client("pz-5339")
        opened = lead.request("incident.open", {"kind": "traffic", "at": {"lat": 50.8467, "lon": 4.3525}, "radius_meters": 60,
                                                "details": {"participants": ["crisis-centre"]}})
        incident = opened["incident"]["id"]
        received, ready, done = [], threading.Event(), threading.Event()

        def follow():
            follower = client("crisis-centre")
            # Event 3 is thrown away as if the network had lost it: the follower must take a new snapshot.
            for kind, message in follower.follow(incident, drop=lambda event: event["seq"] == 3):
                received.append((kind, message))
                ready.set()
            follower.close()
            done.set()

        thread = threading.Thread(target=follow)
        thread.start()
        self.assertTrue(ready.wait(10))
        for radius in (120, 200, 320, 450):
            lead.request("incident.redraw", {"incident": incident, "at": {"lat": 50.8467, "lon": 4.3525}, "radius_meters": radius})
        expected = {camera["id"] for camera in client("crisis-centre").request("incident.snapshot", {"incident": incident})["cameras"]}
        lead.request("incident.close", {"incident": incident})
        self.assertTrue(done.wait(15))
        thread.join()
        lead.close()

        kinds = [kind for kind, _ in received]
        self.assertEqual(kinds.count("snapshot"), 2, kinds)
        self.assertTrue(any(kind == "resync" and "gap" in message for kind, message in received), received)
        state = set()
        sequences = []
        for kind, message in received:
            if kind == "snapshot":
                state = {camera["id"] for camera in message["cameras"]}
            elif kind == "event":
                sequences.append(message["seq"])
                if message["type"] == "incident.closed":
                    break
                body = message["body"]
                state -= set(body["removed"])
                state |= {camera["id"] for camera in body["added"] + body["relabelled"]}
        self.assertNotIn(3, sequences)
        self.assertEqual(sequences, sorted(sequences))
        self.assertEqual(state, expected)
        self.assertEqual(received[-1][1]["type"], "incident.closed")
        # The follower told the server what its subscription lost: counted per agency.
        metrics = urllib.request.urlopen(json.load(open(os.path.join(DATA, "server.json")))["metrics"], timeout=5).read().decode()
        self.assertRegex(metrics, r'vigil_bus_resyncs_total\{agency="crisis-centre"\} [1-9]')
        self.assertRegex(metrics, r'vigil_bus_events_missed_total\{agency="crisis-centre"\} [1-9]')


if __name__ == "__main__":
    unittest.main()
