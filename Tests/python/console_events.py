"""The console's stream of changes (`GET /api/events`, Server-Sent Events) at its boundary, with
the standard library only: no session, what a change carries, another agency's incident not
told, a session's oldest stream replaced beyond four, the stream ended when the user is
suspended; with --hold, one stream held open until the server stops.

usage: console_events.py VIGIL DATA AGENCY USER OTHER_AGENCY [--hold]

Prints one JSON object of what it saw (with --hold, first {"holding": true} once the stream is
open); the Swift test decides.
"""
import http.client, json, subprocess, sys, urllib.parse

vigil, data, agency, user, other_agency = sys.argv[1:6]
hold = "--hold" in sys.argv[6:]
console = urllib.parse.urlsplit(json.load(open(f"{data}/server.json"))["console"])
seen = {}


def connection():
    return http.client.HTTPConnection(console.hostname, console.port, timeout=15)


def call(path, body=None, cookie=None, csrf=None):
    link = connection()
    headers = {"Content-Type": "application/json"}
    if cookie: headers["Cookie"] = cookie
    if csrf: headers["X-Vigil-CSRF"] = csrf
    link.request("POST" if body is not None else "GET", path, json.dumps(body) if body is not None else None, headers)
    answer = link.getresponse()
    return answer, json.loads(answer.read() or b"{}")


def run(*arguments):
    done = subprocess.run([vigil, *arguments, "--data", data], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"vigil {' '.join(arguments)}: {done.stderr}")
    return done.stdout


class Stream:
    """One `GET /api/events`, read event by event."""

    def __init__(self, cookie=None):
        self.link = connection()
        self.link.request("GET", "/api/events", headers={"Cookie": cookie} if cookie else {})
        self.answer = self.link.getresponse()
        self.status = self.answer.status
        self.type = self.answer.getheader("Content-Type")

    def next(self):
        """The next event as (name, data), ("end", None) when the stream ended, or ("silent", None)."""
        name, payload = None, None
        try:
            while True:
                line = self.answer.readline()
                if not line:
                    return ("end", None)
                line = line.decode().rstrip("\n")
                if line.startswith("event: "): name = line[7:]
                elif line.startswith("data: "): payload = json.loads(line[6:])
                elif line == "" and name is not None: return (name, payload)
        except TimeoutError:
            return ("silent", None)

    def until(self, wanted):
        """Events until one for which `wanted(name, data)` holds, or the stream ends or falls silent."""
        events = []
        while True:
            event = self.next()
            events.append(event)
            if event[0] in ("end", "silent") or wanted(*event):
                return events


def log_in():
    code = run("console", "login", "--user", user, "--agency", agency).splitlines()[0].strip()
    answer, session = call("/api/login", {"code": code})
    cookie = answer.getheader("Set-Cookie").split(";")[0]
    return cookie, session["csrf"]


def ending(event):
    """`ended: REASON` for an ended event, else the event's name."""
    name, payload = event
    return f"{name}: {payload['reason']}" if name == "ended" else name


def opened(reply):
    return reply["result"]["incident"]["id"]


no_session = Stream()
seen["no session"] = [no_session.status, json.loads(no_session.answer.read())["error"]["code"]]
cookie, csrf = log_in()

if hold:
    stream = Stream(cookie)
    print(json.dumps({"holding": stream.status}), flush=True)
    events = stream.until(lambda name, payload: False)
    print(json.dumps({"ended_with": events[-1][0], "events": [event[0] for event in events]}))
    sys.exit(0)

first = Stream(cookie)
seen["stream"] = [first.status, first.type]
# Another agency's incident (the crisis centre takes no part), then one of the session's own.
other = json.loads(run("incident", "open", "--kind", "fire", "--at", "50.8453,4.3571", "--radius", "100", "--agency", other_agency, "--json"))["incident"]["id"]
_, reply = call("/api/request", {"op": "incident.open", "body": {"kind": "fire", "at": {"lat": 50.8453, "lon": 4.3571}, "radius_meters": 80}}, cookie, csrf)
own = opened(reply)
events = first.until(lambda name, payload: name == "change" and payload["channel"] == f"incident/{own}")
changes = [payload for name, payload in events if name == "change"]
seen["changes"] = changes
seen["other agency's incident told"] = any(change["channel"] in (f"incident/{other}", f"incidents/{other_agency}") for change in changes)

# Four more streams of the same session: the first is replaced.
later = [Stream(cookie) for _ in range(4)]
seen["first after four more"] = [ending(event) for event in first.until(lambda name, payload: False)]

# The user is suspended: at the next change, each of the session's streams ends.
run("user", "suspend", user, "--reason", "left the room", "--agency", agency)
run("incident", "open", "--kind", "fire", "--at", "50.8453,4.3571", "--radius", "100", "--agency", agency)
seen["after the suspension"] = [ending(event) for event in later[-1].until(lambda name, payload: False)]
print(json.dumps(seen))
