"""Checks a GeoJSON export as RFC 7946 asks of a producer, independently of Vigil's writer.

Usage: geojson_check.py FILE.geojson -> prints a JSON summary; exits 1 with the problems if any.
Checks a FeatureCollection of Features, positions of two or three finite numbers in range, and
every polygon's rings: closed, at least four positions, the exterior counter-clockwise and the
holes clockwise (section 3.1.6, the right-hand rule, by the sign of the shoelace area).
"""
import json
import math
import sys

problems = []


def position(value, where):
    if not (isinstance(value, list) and len(value) in (2, 3) and all(isinstance(n, (int, float)) and math.isfinite(n) for n in value)):
        problems.append("%s: %r is not a position" % (where, value))
        return False
    if not (-180 <= value[0] <= 180 and -90 <= value[1] <= 90):
        problems.append("%s: %r is out of range" % (where, value))
    return True


def ring(points, where, exterior):
    if not isinstance(points, list) or len(points) < 4 or not all(position(p, where) for p in points):
        problems.append("%s: a ring of fewer than four positions" % where)
        return
    if points[0] != points[-1]:
        problems.append("%s: the ring is not closed" % where)
    twice_area = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(points, points[1:]))
    if exterior and twice_area <= 0:
        problems.append("%s: the exterior ring is not counter-clockwise" % where)
    if not exterior and twice_area >= 0:
        problems.append("%s: a hole is not clockwise" % where)


def geometry(value, where):
    if value is None:
        return "null"
    kind, coordinates = value.get("type"), value.get("coordinates")
    if kind == "Point":
        position(coordinates, where)
    elif kind == "LineString":
        for p in coordinates:
            position(p, where)
    elif kind == "Polygon":
        for index, r in enumerate(coordinates):
            ring(r, "%s ring %d" % (where, index), index == 0)
    elif kind == "MultiPolygon":
        for number, polygon in enumerate(coordinates):
            for index, r in enumerate(polygon):
                ring(r, "%s polygon %d ring %d" % (where, number, index), index == 0)
    else:
        problems.append("%s: unexpected geometry %r" % (where, kind))
    return kind


def main(path):
    collection = json.load(open(path))
    if collection.get("type") != "FeatureCollection" or not isinstance(collection.get("features"), list):
        problems.append("not a FeatureCollection")
        return {}
    kinds = {}
    for index, feature in enumerate(collection["features"]):
        if feature.get("type") != "Feature" or "properties" not in feature:
            problems.append("feature %d is not a Feature" % index)
        kind = geometry(feature.get("geometry"), "feature %d" % index)
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"features": len(collection["features"]), "geometries": kinds}


summary = main(sys.argv[1])
print(json.dumps({"summary": summary, "problems": problems}))
sys.exit(1 if problems else 0)
