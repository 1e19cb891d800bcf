#!/usr/bin/env python3
"""The replicated coordinator across hosts (`make test-cluster`): three `vigil serve --cluster`
coordinators, two relay nodes (an origin at the camera owner's site, an edge at the viewer's) and a
viewer, each in a network namespace of its own joined to a bridge by a veth link
(scripts/cluster-netns), the test driving them from this host.

Under a loop of acknowledged changes it cuts the leader's link (a partition), heals it, then kills
the new leader; it checks that nothing acknowledged is lost, that the audit chain verifies (one
history), that journals continue their sequences, that a cut-off leader stops acting, and that a
view served by the edge node, which pulls the camera from the origin node, plays on through both
failovers.

Usage: netns_cluster.py VIGIL_BINARY   (as root; exit 0 when every check holds)
"""
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

VIGIL = os.path.abspath(sys.argv[1])
NETNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "cluster-netns")
COORDINATORS = {1: "10.77.0.11", 2: "10.77.0.12", 3: "10.77.0.13"}
RAFT = ",".join(f"{host}:7716" for host in COORDINATORS.values())
FAILURES = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        FAILURES.append(what)


def netns(*arguments):
    subprocess.run([NETNS, *arguments], check=True)


class Process:
    """A process in a namespace; its standard output lines kept, its standard error in a file."""

    def __init__(self, namespace, arguments, log):
        self.log = open(log, "w")
        self.process = subprocess.Popen(["ip", "netns", "exec", namespace, VIGIL, *arguments],
                                        stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def roles(self):
        roles = []
        for line in self.lines:
            try:
                roles.append(json.loads(line).get("cluster", {}).get("role"))
            except ValueError:
                pass
        return roles

    def wait_for_role(self, role, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.roles() and self.roles()[-1] == role:
                return True
            time.sleep(0.05)
        return False

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# dqlite's protocol version (1), then a request for the leader: a header (1 word of body, type 0), its body.
DQLITE_LEADER_REQUEST = struct.pack("<Q", 1) + struct.pack("<IBBH", 1, 0, 0, 0) + struct.pack("<Q", 0)


def read_reply(connection):
    reply = b""
    try:
        while len(reply) < 4096:
            chunk = connection.recv(4096)
            if not chunk:
                break
            reply += chunk
    except (socket.timeout, ConnectionResetError, ssl.SSLError):
        pass
    return reply


def dqlite_in_the_clear(address):
    """What a member's Raft port answers to dqlite's own protocol without TLS (as dqlite serves
    it by itself)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.settimeout(2)
        connection.sendall(DQLITE_LEADER_REQUEST)
        return read_reply(connection)


def dqlite_over_tls_without_a_key(address):
    """The same request over TLS, from a client that shows no certificate: None when the
    handshake itself fails, else what came back."""
    host, port = address.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw) as connection:
            connection.settimeout(2)
            connection.sendall(DQLITE_LEADER_REQUEST)
            return read_reply(connection)
    except (ssl.SSLError, OSError):
        return None


def vigil(*arguments, timeout=60):
    return subprocess.run([VIGIL, *arguments], capture_output=True, text=True, timeout=timeout)


def main():
    if subprocess.run([NETNS, "check"]).returncode != 0:
        print("test-cluster needs root with CAP_NET_ADMIN (network namespaces): not run", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="vigil-netns-")
    members = {}
    others = []
    netns("up")
    try:
        def data(member):
            return os.path.join(work, f"member{member}")

        def start(member):
            if member != 1 and not os.path.exists(data(member)):
                os.makedirs(data(member))
                shutil.copytree(os.path.join(data(1), "keys"), os.path.join(data(member), "keys"))
            members[member] = Process(f"vigil-c{member}", [
                "serve", "--data", data(member), "--host", COORDINATORS[member], "--cluster", RAFT, "--member", str(member),
                "--console-port=-1", "--simulate", "--relay-max-streams", "0"], os.path.join(work, f"member{member}.log"))

        start(1)
        check(members[1].wait_for_role("leader"), "member 1 starts the cluster and leads it")
        start(2)
        start(3)
        check(members[2].wait_for_role("standby") and members[3].wait_for_role("standby"), "members 2 and 3 join it as standbys")
        # The members joined each other over the cluster link; dqlite's protocol in the clear gets
        # no answer (no leader's address comes back; at most a TLS alert).
        reply = dqlite_in_the_clear(f"{COORDINATORS[1]}:7716")
        check(b"10.77.0." not in reply and (not reply or reply[0] == 0x15),
              f"the Raft port speaks only TLS with the cluster's key (a plain dqlite request got {reply[:16]!r})")
        reply = dqlite_over_tls_without_a_key(f"{COORDINATORS[1]}:7716")
        check(not reply, f"a TLS client without the cluster's key gets nothing either (got {reply!r})")
        client = data(2)

        # Zone 5339's own node pulls its cameras at its site; the crisis centre's serves the viewer's.
        for user, agency, role in [("relay-1", "pz-5339", "relay"), ("relay-2", "crisis-centre", "relay"), ("pz.officer", "pz-5339", "operator")]:
            added = vigil("user", "add", user, "--name", "N", "--badge", "B-" + user, "--role", role, "--agency", agency, "--data", client)
            check(added.returncode == 0, f"user {user} added through the leader: {added.stderr.strip()}")
        # The origin pulls zone 5339's cameras at its site; the edge serves the viewer's site.
        nodes = {}
        for name, host, site in [("relay-1", "10.77.0.21", ["--site", "pz-hq", "--origin-of", "pz-5339", "--simulate"]),
                                 ("relay-2", "10.77.0.22", ["--site", "crisis-room"])]:
            nodes[name] = Process(f"vigil-r{name[-1]}", [
                "relay", "--coordinator", ",".join(f"tcp://{host}:7710" for host in COORDINATORS.values()),
                "--server-key", os.path.join(client, "keys/server.key"), "--cert", os.path.join(client, f"keys/users/{name}.key_secret"),
                "--host", host, "--footage", os.path.join(work, f"{name}-footage"), *site], os.path.join(work, f"{name}.log"))
            others.append(nodes[name])
        deadline = time.time() + 60
        while not all(node.lines for node in nodes.values()) and time.time() < deadline:
            time.sleep(0.05)
        check(all(node.lines for node in nodes.values()), "both relay nodes register with the leader")

        opened = vigil("incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "350", "--data", client,
                       "--agency", "pz-5339", "--json")
        incident = json.loads(opened.stdout)["incident"]["id"]
        shown = json.loads(vigil("incident", "show", str(incident), "--data", client, "--agency", "pz-5339", "--json").stdout)
        camera = next(c["id"] for c in shown["cameras"] if c["owner"] == "pz-5339")
        watched = os.path.join(work, "watched.ts")
        viewer = Process("vigil-v1", [
            "watch", "--incident", str(incident), "--camera", camera, "-o", watched, "--seconds", "40", "--reason", "public-order",
            "--text", "Following the crowd across sites", "--data", client, "--agency", "pz-5339", "--user", "pz.officer",
            "--timeout", "30", "--site", "crisis-room"], os.path.join(work, "viewer.log"))
        others.append(viewer)

        # A loop of acknowledged changes, from this host, through whichever coordinator leads.
        acknowledged = {}
        stop = threading.Event()

        def change_loop():
            number = 0
            while not stop.is_set():
                number += 1
                updated = vigil("incident", "update", str(incident), "--title", f"change {number}", "--data", client, "--agency", "pz-5339",
                                "--json", "--timeout", "5")
                if updated.returncode == 0:
                    acknowledged[number] = json.loads(updated.stdout)["incident"]["sequence"]

        changing = threading.Thread(target=change_loop)
        changing.start()
        time.sleep(4)

        # A partition: the leader's link is cut. The others elect a leader; the cut-off one stops acting.
        cut = next(m for m in members if members[m].roles()[-1] == "leader")
        before = len(acknowledged)
        netns("cut", f"vigil-c{cut}")
        check(members[cut].wait_for_role("standby", timeout=20), f"member {cut}, cut off, stops acting (a standby again)")
        successor = None
        deadline = time.time() + 20
        while successor is None and time.time() < deadline:
            successor = next((m for m in members if m != cut and members[m].roles()[-1] == "leader"), None)
            time.sleep(0.05)
        check(successor is not None, f"another member leads while member {cut} is cut off: {successor}")
        # A change sent to the cut-off leader just before the cut gets no answer: the client cannot
        # resend it (it may have been done) and gives up after its --timeout (5 s); the next goes
        # to the new leader. So changes resume within that time, plus the new leader's start.
        deadline = time.time() + 12
        while len(acknowledged) <= before and time.time() < deadline:
            time.sleep(0.1)
        check(len(acknowledged) > before, f"changes go on without member {cut} ({len(acknowledged) - before} acknowledged meanwhile)")
        time.sleep(1)
        netns("heal", f"vigil-c{cut}")
        time.sleep(3)
        check(members[cut].roles()[-1] == "standby", f"healed, member {cut} stays a standby: one leader")

        # The new leader killed outright.
        before = len(acknowledged)
        members[successor].kill()
        third = None
        deadline = time.time() + 20
        while third is None and time.time() < deadline:
            third = next((m for m in members if m != successor and members[m].process.poll() is None and members[m].roles()[-1] == "leader"), None)
            time.sleep(0.05)
        check(third is not None, f"a third leader after member {successor} is killed: {third}")
        time.sleep(5)
        stop.set()
        changing.join()
        check(len(acknowledged) > before, f"changes go on after the kill ({len(acknowledged) - before} acknowledged)")

        # Nothing acknowledged is lost; the journal's sequence grew with each acknowledged change.
        final = json.loads(vigil("incident", "show", str(incident), "--data", client, "--agency", "pz-5339", "--json").stdout)["incident"]
        check(final["sequence"] >= max(acknowledged.values()), f"the incident's sequence {final['sequence']} holds every acknowledged one (last {max(acknowledged.values())})")
        sequences = [acknowledged[n] for n in sorted(acknowledged)]
        check(sequences == sorted(sequences) and len(set(sequences)) == len(sequences), "acknowledged sequences only grow: one history")
        verified = vigil("audit", "verify", "--data", client, "--json")
        check('"intact":true' in verified.stdout, f"the audit chain verifies: {verified.stdout.strip()} {verified.stderr.strip()}")

        # The view played on through both failovers.
        viewer.process.wait(timeout=90)
        said = open(os.path.join(work, "viewer.log")).read()
        check(viewer.process.returncode == 0 and "the relay ended the view" not in said, f"the view plays to its end: {said.strip()[-300:]}")
        check("served by relay node relay-2 " in said and said.count("sealed (content key") == 1,
              f"one view, served by the edge at the viewer's site: {said.strip()[-300:]}")
        pulls = open(os.path.join(work, "relay-1.log")).read().count("edge pulls a camera")
        check(pulls == 1, f"the edge pulled the camera from the origin once, through both failovers: {pulls}")
        probed = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", watched],
                                capture_output=True, text=True)
        times = sorted(float(t.strip(", ")) for t in probed.stdout.split("\n") if t.strip(", "))
        gap = max((b - a for a, b in zip(times, times[1:])), default=float("inf"))
        check(len(times) >= 350 and gap < 1.0, f"{len(times)} frames in 40 s, longest gap {gap:.2f} s (a simulated camera sends 10 a second)")
    finally:
        for process in list(members.values()) + others:
            process.kill()
        netns("down")
        if FAILURES:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"test-cluster: {len(FAILURES)} failed" if FAILURES else "test-cluster: every check holds")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
