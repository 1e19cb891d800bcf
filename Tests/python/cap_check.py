"""Checks a CAP 1.2 alert with Python's own XML parser, independently of Vigil's writer.

Usage: cap_check.py FILE.xml  -> prints a JSON summary; exits 1 with the problems if any.
Checks the required elements and their order-independent presence (OASIS CAP 1.2, section 3.2),
the code lists (status, msgType, scope, category, urgency, severity, certainty), the dateTime
form (no "Z"), `restriction` for Restricted scope, `references` for Update and Cancel, and the
shapes of `polygon` (closed, at least four pairs) and `circle` ("lat,lon radius").
"""
import json
import re
import sys
import xml.etree.ElementTree as ET

NS = "urn:oasis:names:tc:emergency:cap:1.2"
Q = lambda name: "{%s}%s" % (NS, name)
VOCABULARIES = {
    "status": {"Actual", "Exercise", "System", "Test", "Draft"},
    "msgType": {"Alert", "Update", "Cancel", "Ack", "Error"},
    "scope": {"Public", "Restricted", "Private"},
    "category": {"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"},
    "urgency": {"Immediate", "Expected", "Future", "Past", "Unknown"},
    "severity": {"Extreme", "Severe", "Moderate", "Minor", "Unknown"},
    "certainty": {"Observed", "Likely", "Possible", "Unlikely", "Unknown"},
}
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
PAIR = re.compile(r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?$")

problems = []


def text(parent, name, required=True):
    element = parent.find(Q(name))
    if element is None or not (element.text or "").strip():
        if required:
            problems.append("missing <%s>" % name)
        return None
    return element.text.strip()


def main(path):
    root = ET.parse(path).getroot()
    if root.tag != Q("alert"):
        problems.append("root is %s, not a CAP 1.2 alert" % root.tag)
    summary = {}
    for name in ["identifier", "sender", "sent", "status", "msgType", "scope"]:
        summary[name] = text(root, name)
    if summary["sent"] and not DATETIME.match(summary["sent"]):
        problems.append("sent %r is not a CAP dateTime" % summary["sent"])
    for name in ["status", "msgType", "scope"]:
        if summary[name] and summary[name] not in VOCABULARIES[name]:
            problems.append("%s %r is not in the CAP code list" % (name, summary[name]))
    if summary["scope"] == "Restricted":
        text(root, "restriction")
    if summary["msgType"] in ("Update", "Cancel"):
        summary["references"] = text(root, "references")
    for forbidden in (" ", ","):
        for name in ("identifier", "sender"):
            if summary[name] and forbidden in summary[name]:
                problems.append("%s contains %r" % (name, forbidden))
    infos = root.findall(Q("info"))
    summary["areas"] = []
    for info in infos:
        for name in ["category", "event", "urgency", "severity", "certainty"]:
            value = text(info, name)
            summary[name] = value
            if name in VOCABULARIES and value and value not in VOCABULARIES[name]:
                problems.append("%s %r is not in the CAP code list" % (name, value))
        summary["headline"] = text(info, "headline", required=False)
        summary["parameters"] = {p.findtext(Q("valueName")): p.findtext(Q("value")) for p in info.findall(Q("parameter"))}
        for area in info.findall(Q("area")):
            text(area, "areaDesc")
            for polygon in area.findall(Q("polygon")):
                pairs = polygon.text.split()
                if len(pairs) < 4 or pairs[0] != pairs[-1] or not all(PAIR.match(p) for p in pairs):
                    problems.append("polygon is not closed lat,lon pairs (4 or more)")
                summary["areas"].append({"polygon": len(pairs)})
            for circle in area.findall(Q("circle")):
                parts = circle.text.split()
                if len(parts) != 2 or not PAIR.match(parts[0]) or float(parts[1]) <= 0:
                    problems.append("circle %r is not 'lat,lon radius'" % circle.text)
                summary["areas"].append({"circle": circle.text})
    if not infos:
        problems.append("no <info>")
    print(json.dumps({"summary": summary, "problems": problems}, sort_keys=True))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
