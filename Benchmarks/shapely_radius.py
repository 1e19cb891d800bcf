"""The radius queries of `vigil bench geo`, answered by shapely's STRtree (also GEOS) as a
Python user would: query the circle's box, keep what lies within the radius.

    shapely_radius.py POINTS.csv QUERIES.csv

POINTS.csv and QUERIES.csv hold projected x,y (and for queries, radius) in metres. Prints one
JSON line: build seconds and per-query p50/p99 in microseconds.
"""
import json
import sys
import time
import warnings

from shapely.geometry import Point, box
from shapely.strtree import STRtree

warnings.filterwarnings("ignore")
points = [Point(float(x), float(y)) for x, y in (line.split(",") for line in open(sys.argv[1]))]
queries = [tuple(map(float, line.split(","))) for line in open(sys.argv[2])]
start = time.perf_counter()
tree = STRtree(points)
tree.query(Point(0, 0))  # shapely builds lazily, like GEOS
build = time.perf_counter() - start
timings = []
found = 0
for x, y, r in queries:
    start = time.perf_counter_ns()
    centre = Point(x, y)
    hits = [p for p in tree.query(box(x - r, y - r, x + r, y + r)) if p.distance(centre) <= r]
    timings.append(time.perf_counter_ns() - start)
    found += len(hits)
timings.sort()
print(json.dumps({"build_s": build, "p50_us": timings[len(timings) // 2] / 1000, "p99_us": timings[len(timings) * 99 // 100] / 1000,
                  "mean_found": found / len(queries)}))
