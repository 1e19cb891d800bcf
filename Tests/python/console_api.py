"""The operator console's HTTP API at its boundary, with the standard library only: what it
answers to a bad code, a missing session, a forged or cross-site request, an operation it does
not pass, broken JSON, a path outside Leaflet's folder, and a user suspended mid-session.

usage: console_api.py VIGIL DATA AGENCY USER

Prints one JSON object of {case: [HTTP status, error code or "ok"]}; the Swift test decides.
"""
import http.cookiejar, json, subprocess, sys, urllib.error, urllib.request

vigil, data, agency, user = sys.argv[1:5]
console = json.load(open(f"{data}/server.json"))["console"]
jar = http.cookiejar.CookieJar()
# The session cookie is Secure: the standard library keeps it for http://127.0.0.1 only if told so.
jar.set_policy(http.cookiejar.DefaultCookiePolicy(secure_protocols=("https", "wss", "http")))
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
seen = {}


def call(case, path, body=None, headers=None, method=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(console + path, data=data, method=method or ("POST" if data is not None else "GET"),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with opener.open(request, timeout=10) as answer:
            reply = json.loads(answer.read() or b"{}")
            status = answer.status
    except urllib.error.HTTPError as error:
        status, reply = error.code, json.loads(error.read() or b"{}")
    code = (reply.get("error") or {}).get("code") if isinstance(reply, dict) else None
    seen[case] = [status, code or "ok"]
    return reply


def code():
    return subprocess.run([vigil, "console", "login", "--user", user, "--agency", agency, "--data", data],
                          capture_output=True, text=True, check=True).stdout.strip()


call("unknown code", "/api/login", {"code": "0000-not-a-code"})
call("no session", "/api/request", {"op": "incident.list"})
call("session before login", "/api/session")
login_code = code()
call("login as a form", "/api/login", raw=f'{{"code": "{login_code}", "x": "'.encode() + b'="}', headers={"Content-Type": "text/plain"})
session = call("login", "/api/login", {"code": login_code})
call("the same code again", "/api/login", {"code": login_code})
csrf = {"X-Vigil-CSRF": session.get("csrf", "")}
call("no csrf token", "/api/request", {"op": "incident.list"})
call("another site's page", "/api/request", {"op": "incident.list"}, {**csrf, "Origin": "http://evil.example"})
call("an operation not passed", "/api/request", {"op": "user.add", "body": {}}, csrf)
call("broken json", "/api/request", raw=b'{"op": ', headers=csrf)
reply = call("a bus error passes through", "/api/request", {"op": "incident.open", "body": {"kind": "fire", "at": {"lat": 50.85, "lon": 4.35}, "radius_meters": -5}}, csrf)
seen["the bus's code"] = (reply.get("error") or {}).get("code")
call("a list", "/api/request", {"op": "incident.list"}, csrf)
call("outside leaflet's folder", "/leaflet/..%2F..%2F..%2Fetc%2Fpasswd")
call("an unknown basemap", "/basemap/secrets.geojson")
subprocess.run([vigil, "user", "suspend", user, "--reason", "left the room", "--agency", agency, "--data", data], capture_output=True, check=True)
call("after the user's suspension", "/api/request", {"op": "incident.list"}, csrf)
print(json.dumps(seen))
