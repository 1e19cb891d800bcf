import Foundation
import Geo

/// An incident written for other systems: CAP 1.2 XML for alerting and dispatch systems, and
/// GeoJSON (the incident's geometry and its selected cameras) for GIS tools.
public enum IncidentExport {
    public static let capNamespace = "urn:oasis:names:tc:emergency:cap:1.2"

    /// The CAP `category` of an incident kind.
    public static func capCategory(_ kind: IncidentKind) -> String {
        switch kind {
        case .fire: "Fire"
        case .medical: "Health"
        case .traffic: "Transport"
        case .publicOrder, .demonstration: "Security"
        case .crisis: "Safety"
        case .other: "Other"
        }
    }

    /// CAP 1.2 XML for the incident's current state (OASIS CAP 1.2, section 3).
    ///
    /// The first journal entry is an `Alert`, later ones `Update`s referencing it, a cancelled
    /// incident a `Cancel`. An exercise is `status` `Exercise`. A circle becomes `circle` (radius
    /// in km), a perimeter one `polygon` per outer ring (CAP has no holes), and a march, which CAP
    /// cannot draw as a line, the circle of its fallback radius around the head.
    ///
    /// - Parameter sender: the CAP sender, unique to this deployment (for example `vigil.brussels`).
    public static func cap(_ snapshot: IncidentSnapshot, sender: String) -> String {
        let incident = snapshot.incident
        let identifier = "\(sender).incident-\(incident.id).\(incident.sequence)"
        let messageType = incident.status == .cancelled ? "Cancel" : incident.sequence == 1 ? "Alert" : "Update"
        var xml = XMLWriter()
        xml.open("alert", attributes: ["xmlns": capNamespace])
        xml.element("identifier", identifier)
        xml.element("sender", sender)
        xml.element("sent", capTime(Date()))
        xml.element("status", incident.exercise ? "Exercise" : "Actual")
        xml.element("msgType", messageType)
        xml.element("scope", "Restricted")
        xml.element("restriction", "Emergency services taking part in incident \(incident.id); camera positions under the owners' grants")
        // CAP 1.2's sequence (section 3.2.1, and its schema): note, then references, then incidents.
        if !incident.details.externalReferences.isEmpty {
            xml.element("note", incident.details.externalReferences.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; "))
        }
        if messageType != "Alert" {
            xml.element("references", "\(sender),\(sender).incident-\(incident.id).1,\(capTime(incident.openedAt))")
        }
        xml.element("incidents", "\(sender).incident-\(incident.id)" + (incident.details.parent.map { " \(sender).incident-\($0)" } ?? ""))
        xml.open("info")
        xml.element("language", "en")
        xml.element("category", capCategory(incident.kind))
        xml.element("event", incident.kind.rawValue)
        xml.element("urgency", incident.details.urgency.rawValue)
        xml.element("severity", incident.details.severity.rawValue)
        xml.element("certainty", incident.details.certainty.rawValue)
        xml.element("senderName", incident.leadAgency)
        if let title = incident.title { xml.element("headline", title) }
        var parameters: [(String, String)] = [("status", incident.status.rawValue), ("lead_agency", incident.leadAgency)]
        if !incident.details.participants.isEmpty { parameters.append(("participants", incident.details.participants.joined(separator: " "))) }
        if let commander = incident.details.commander { parameters.append(("commander", commander)) }
        parameters.append(("cameras", "\(snapshot.cameras.count)"))
        for (name, value) in parameters {
            xml.open("parameter")
            xml.element("valueName", name)
            xml.element("value", value)
            xml.close("parameter")
        }
        xml.open("area")
        xml.element("areaDesc", incident.title ?? "\(incident.kind.rawValue) incident \(incident.id)")
        if let area = snapshot.area, area.type != "Point", incident.march == nil {
            for ring in outerRings(area) { xml.element("polygon", ring.map { "\(format($0[1])),\(format($0[0]))" }.joined(separator: " ")) }
        } else {
            xml.element("circle", "\(format(incident.center.lat)),\(format(incident.center.lon)) \(format(incident.radiusMeters / 1000))")
        }
        xml.close("area")
        xml.close("info")
        xml.close("alert")
        return xml.text
    }

    /// A GeoJSON FeatureCollection: the incident first (its circle's centre, perimeter or route,
    /// with its details as properties), then one feature per selected camera. A confidential
    /// camera has a null geometry, as its position is withheld.
    public static func geoJSON(_ snapshot: IncidentSnapshot) throws -> Data {
        let incident = snapshot.incident
        var properties: [String: JSONValue] = [
            "id": .number(Double(incident.id)), "kind": .string(incident.kind.rawValue), "status": .string(incident.status.rawValue),
            "exercise": .bool(incident.exercise), "lead_agency": .string(incident.leadAgency), "sequence": .number(Double(incident.sequence)),
            "severity": .string(incident.details.severity.rawValue), "urgency": .string(incident.details.urgency.rawValue),
            "certainty": .string(incident.details.certainty.rawValue),
            "participants": .array(incident.details.participants.map(JSONValue.string)),
            "opened_at": .string(AuditLog.timestamp(incident.openedAt)),
        ]
        if let title = incident.title { properties["title"] = .string(title) }
        if let commander = incident.details.commander { properties["commander"] = .string(commander) }
        if let parent = incident.details.parent { properties["parent"] = .number(Double(parent)) }
        if snapshot.area == nil && incident.march == nil { properties["radius_meters"] = .number(incident.radiusMeters) }
        // RFC 7946 wants exterior rings counter-clockwise and holes clockwise, whatever the caller drew.
        let geometry = snapshot.route ?? snapshot.area?.rightHanded
            ?? GeoJSONGeometry(type: "Point", coordinates: .position([incident.center.lon, incident.center.lat]))
        var features: [JSONValue] = [.object(["type": .string("Feature"), "geometry": .geometry(geometry), "properties": .object(properties)])]
        for camera in snapshot.cameras {
            var cameraProperties: [String: JSONValue] = [
                "id": .string(camera.id), "owner": .string(camera.owner), "kind": .string(camera.kind.rawValue),
                "place_type": .string(camera.placeType), "distance_meters": .number(camera.distanceMeters), "reason": .string(camera.reason),
                "position_withheld": .bool(camera.position == nil),
            ]
            if let section = camera.section { cameraProperties["section"] = .string(section) }
            let point = camera.position.map { JSONValue.object(["type": .string("Point"), "coordinates": .array([.number($0.lon), .number($0.lat)])]) }
            features.append(.object(["type": .string("Feature"), "geometry": point ?? .null, "properties": .object(cameraProperties)]))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(JSONValue.object(["type": .string("FeatureCollection"), "features": .array(features)]))
    }

    /// CAP times: `2026-11-22T14:05:00-00:00` (CAP forbids `Z`; UTC is written `-00:00`).
    static func capTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d-00:00", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    private static func format(_ value: Double) -> String {
        String(format: "%.6f", value).replacingOccurrences(of: #"\.?0+$"#, with: "", options: .regularExpression)
    }

    /// The outer rings of a Polygon or MultiPolygon, as [lon, lat] positions.
    static func outerRings(_ geometry: GeoJSONGeometry) -> [[[Double]]] {
        func ring(_ coordinates: GeoJSONGeometry.Coordinates) -> [[Double]] {
            guard case .list(let points) = coordinates else { return [] }
            return points.compactMap { if case .position(let p) = $0, p.count >= 2 { return p } else { return nil } }
        }
        guard case .list(let items) = geometry.coordinates else { return [] }
        switch geometry.type {
        case "Polygon": return items.first.map { [ring($0)] } ?? []
        case "MultiPolygon":
            return items.compactMap { polygon in
                guard case .list(let rings) = polygon, let outer = rings.first else { return nil }
                return ring(outer)
            }
        default: return []
        }
    }
}

/// A minimal XML writer: elements with escaped text, two-space indentation.
struct XMLWriter {
    private(set) var text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    private var depth = 0

    mutating func open(_ name: String, attributes: [String: String] = [:]) {
        let attributeText = attributes.sorted { $0.key < $1.key }.map { " \($0.key)=\"\(Self.escape($0.value))\"" }.joined()
        text += String(repeating: "  ", count: depth) + "<\(name)\(attributeText)>\n"
        depth += 1
    }

    mutating func close(_ name: String) {
        depth -= 1
        text += String(repeating: "  ", count: depth) + "</\(name)>\n"
    }

    mutating func element(_ name: String, _ value: String) {
        text += String(repeating: "  ", count: depth) + "<\(name)>\(Self.escape(value))</\(name)>\n"
    }

    static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            // Control characters other than tab and line breaks are not allowed in XML 1.0.
            case _ where character.value < 0x20 && ![0x09, 0x0A, 0x0D].contains(character.value): escaped += " "
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}

/// Any JSON value, for documents whose shape is built at run time.
enum JSONValue: Encodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
    case geometry(GeoJSONGeometry)

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        case .geometry(let value): try container.encode(value)
        }
    }
}
