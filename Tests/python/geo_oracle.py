"""Checks `vigil cameras select --batch` against an independent oracle: geodesic distances and
azimuths on the WGS84 ellipsoid from GeographicLib (Karney's algorithms), and a ray-casting
point-in-polygon test of its own. Nothing here uses PROJ or GEOS. For route corridors, a
camera clearly inside or outside (more than 2 m from the edge in metres along the ellipsoid's
local radii, good to about 1e-8 at this scale) is decided that way; near the edge, by the
geodesic distance to each route segment.

    geo_oracle.py VIGIL_BINARY REGISTRY.geojson ROUTES.geojson [SEED]

Generates random queries of every kind on the registry, runs them through the binary in one
batch, and compares each answer with the oracle's set. A camera within 0.5 m of a query's
boundary may fall either way. Prints one line per kind and a closing 'N passed, N failed'
line; exits 1 on any mismatch.
"""
import json
import math
import random
import subprocess
import sys
import tempfile

from geographiclib.geodesic import Geodesic

TOLERANCE = 0.5
WGS84 = Geodesic.WGS84
binary, registry_path, routes_path = sys.argv[1:4]
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 20261122)

cameras = []
for feature in json.load(open(registry_path))["features"]:
    p = feature["properties"]
    lon, lat = feature["geometry"]["coordinates"]
    cameras.append(dict(id=p["id"], lat=lat, lon=lon, heading=p.get("heading_deg"), fov=p.get("fov_deg"),
                        range=p.get("range_m") or 50.0))
routes = [f["geometry"]["coordinates"] for f in json.load(open(routes_path))["features"]
          if f["geometry"]["type"] == "LineString"]


def geodesic(lat1, lon1, lat2, lon2):
    """Distance in metres and forward azimuth (degrees from true north) from point 1 to point 2."""
    g = WGS84.Inverse(lat1, lon1, lat2, lon2)
    return g["s12"], g["azi1"] % 360


def near(lat, lon, metres):
    """A cheap prefilter: cameras inside a box comfortably larger than `metres` around (lat, lon)."""
    dlat = metres / 110_000 + 1e-4
    dlon = metres / (110_000 * math.cos(math.radians(lat))) + 1e-4
    return [c for c in cameras if abs(c["lat"] - lat) <= dlat and abs(c["lon"] - lon) <= dlon]


def local_xy(lat0, lon0, lat, lon):
    """Metres east and north of (lat0, lon0) along the ellipsoid's local radii: only used to
    decide which cameras are near a polygon edge."""
    a, e2 = 6378137.0, 0.00669437999014
    phi = math.radians(lat0)
    w = math.sqrt(1 - e2 * math.sin(phi) ** 2)
    return (math.radians(lon - lon0) * a / w * math.cos(phi), math.radians(lat - lat0) * a * (1 - e2) / w ** 3)


def segment_distance(a, b):
    """Planar distance from the origin to the segment a-b."""
    (x1, y1), (x2, y2) = a, b
    length2 = (x2 - x1) ** 2 + (y2 - y1) ** 2
    t = 0 if length2 == 0 else max(0, min(1, (-x1 * (x2 - x1) - y1 * (y2 - y1)) / length2))
    return math.hypot(x1 + t * (x2 - x1), y1 + t * (y2 - y1))


def random_point():
    return rng.uniform(50.81, 50.88), rng.uniform(4.31, 4.42)


queries, oracles = [], []

# Radius.
for _ in range(200):
    lat, lon = random_point()
    r = rng.uniform(30, 1500)
    inside, edge = set(), set()
    for c in near(lat, lon, r):
        d, _ = geodesic(lat, lon, c["lat"], c["lon"])
        (edge if abs(d - r) < TOLERANCE else inside if d <= r else set()).add(c["id"])
    queries.append({"type": "radius", "at": {"lat": lat, "lon": lon}, "meters": r})
    oracles.append(("radius", inside, edge))

# k nearest within a maximum distance.
for _ in range(100):
    lat, lon = random_point()
    k, maximum = rng.randint(1, 8), rng.uniform(100, 2000)
    ranked = sorted((geodesic(lat, lon, c["lat"], c["lon"])[0], c["id"]) for c in near(lat, lon, maximum))
    ranked = [(d, i) for d, i in ranked if d <= maximum + TOLERANCE]
    chosen = ranked[:k]
    cutoff = min(chosen[-1][0] if len(chosen) == k else maximum, maximum)
    edge = {i for d, i in ranked if abs(d - cutoff) < TOLERANCE or abs(d - maximum) < TOLERANCE}
    queries.append({"type": "nearest", "at": {"lat": lat, "lon": lon}, "count": k, "max_meters": maximum})
    oracles.append(("nearest", {i for d, i in chosen} - edge, edge))

# Sees a point: half the points near a random camera, so that answers are not all empty.
for n in range(150):
    if n % 2:
        lat, lon = random_point()
    else:
        c = rng.choice(cameras)
        g = WGS84.Direct(c["lat"], c["lon"], rng.uniform(0, 360), rng.uniform(0, c["range"] * 1.2))
        lat, lon = g["lat2"], g["lon2"]
    inside, edge = set(), set()
    for c in near(lat, lon, 600):
        d, azimuth = geodesic(c["lat"], c["lon"], lat, lon)
        if d > c["range"] + TOLERANCE:
            continue
        if c["heading"] is None or (c["fov"] or 360) >= 360:
            off_edge = c["range"] - d
        else:
            off = abs((azimuth - c["heading"] + 180) % 360 - 180)
            # Signed distance to the nearer straight edge of the sector, and to its arc.
            off_edge = min(d * math.sin(math.radians(min(90, c["fov"] / 2 - off))) if off <= c["fov"] / 2
                           else -d * math.sin(math.radians(min(90, off - c["fov"] / 2))), c["range"] - d)
        (edge if abs(off_edge) < TOLERANCE else inside if off_edge > 0 else set()).add(c["id"])
    queries.append({"type": "sees", "at": {"lat": lat, "lon": lon}})
    oracles.append(("sees", inside, edge))

# Route corridors: pieces of the real demonstration routes.
for _ in range(100):
    route = rng.choice(routes)
    start = rng.randrange(0, len(route) - 1)
    piece = route[start:start + rng.randint(2, 12)]
    width = rng.uniform(20, 120)
    half = width / 2
    inside, edge = set(), set()
    lats = [p[1] for p in piece]
    lons = [p[0] for p in piece]
    box = [c for c in cameras if min(lats) - 0.002 <= c["lat"] <= max(lats) + 0.002 and min(lons) - 0.003 <= c["lon"] <= max(lons) + 0.003]
    for c in box:
        # Local metres around the camera decide clear cases; GeographicLib decides near the edge.
        xs = [local_xy(c["lat"], c["lon"], la, lo) for lo, la in piece]
        rough = min(segment_distance(a, b) for a, b in zip(xs, xs[1:]))
        if abs(rough - half) > 2:
            (inside if rough <= half else set()).add(c["id"])
            continue
        best = math.inf
        for (lon1, lat1), (lon2, lat2) in zip(piece, piece[1:]):
            line = WGS84.InverseLine(lat1, lon1, lat2, lon2)
            # Golden-section search for the nearest point of the geodesic segment.
            lo, hi = 0.0, line.s13
            for _ in range(40):
                m1, m2 = lo + (hi - lo) * 0.382, lo + (hi - lo) * 0.618
                p1, p2 = line.Position(m1), line.Position(m2)
                if geodesic(c["lat"], c["lon"], p1["lat2"], p1["lon2"])[0] < geodesic(c["lat"], c["lon"], p2["lat2"], p2["lon2"])[0]:
                    hi = m2
                else:
                    lo = m1
            p = line.Position((lo + hi) / 2)
            best = min(best, geodesic(c["lat"], c["lon"], p["lat2"], p["lon2"])[0])
        (edge if abs(best - half) < TOLERANCE else inside if best <= half else set()).add(c["id"])
    queries.append({"type": "route", "geometry": {"type": "LineString", "coordinates": piece}, "width_meters": width})
    oracles.append(("route", inside, edge))

# Areas: random convex quadrilaterals; the oracle checks the cameras whose position is inside.
for _ in range(100):
    lat, lon = random_point()
    size = rng.uniform(100, 900)
    corners = []
    for bearing in sorted(rng.uniform(q * 90, q * 90 + 80) for q in range(4)):
        g = WGS84.Direct(lat, lon, bearing, size * rng.uniform(0.6, 1.0))
        corners.append((g["lon2"], g["lat2"]))
    ring = corners + [corners[0]]
    inside, edge = set(), set()
    for c in near(lat, lon, size):
        xs = [local_xy(c["lat"], c["lon"], la, lo) for lo, la in ring]
        crossings = sum(1 for (x1, y1), (x2, y2) in zip(xs, xs[1:])
                        if (y1 > 0) != (y2 > 0) and x1 + (0 - y1) * (x2 - x1) / (y2 - y1) > 0)

        boundary = min(segment_distance(a, b) for a, b in zip(xs, xs[1:]))
        (edge if boundary < TOLERANCE else inside if crossings % 2 else set()).add(c["id"])
    queries.append({"type": "area", "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}})
    oracles.append(("area", inside, edge))

with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as batch:
    for query in queries:
        batch.write(json.dumps(query) + "\n")
output = subprocess.run([binary, "cameras", "select", "--registry", registry_path, "--batch", batch.name],
                        capture_output=True, text=True, check=True).stdout.splitlines()
assert len(output) == len(queries), f"{len(output)} answers for {len(queries)} queries"

passed, failed, by_kind = 0, 0, {}
for query, (kind, expected, edge), line in zip(queries, oracles, output):
    answer = json.loads(line)
    if "error" in answer:
        got = None
    elif kind == "area":
        got = {c["id"] for c in answer["cameras"] if c["reason"] == "inside_area"}
    else:
        got = {c["id"] for c in answer["cameras"]}
    ok = got is not None and (got - edge) == expected
    stats = by_kind.setdefault(kind, [0, 0, 0])
    stats[0 if ok else 1] += 1
    stats[2] += len(expected)
    if ok:
        passed += 1
    else:
        failed += 1
        detail = answer.get("error") or {"missing": sorted(expected - (got or set()))[:5], "extra": sorted((got or set()) - edge - expected)[:5]}
        print(f"MISMATCH {kind}: {json.dumps(query)[:200]} -> {detail}")
for kind, (ok, bad, total) in by_kind.items():
    print(f"{kind}: {ok} agree, {bad} disagree, {total} cameras selected by the oracle")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
