import Foundation

/// Reads a camera registry from CSV (RFC 4180 quoting, UTF-8) with this header, in any order:
///
///     id,owner,kind,place_type,lat,lon,heading_deg,fov_deg,range_m,stream,confidentiality,tags[,privacy_masks]
///
/// `heading_deg`, `fov_deg`, `range_m` and `tags` may be empty (omnidirectional, default range,
/// no tags); `tags` are separated by `;`; the optional `privacy_masks` column holds the masks as
/// JSON (`[[[0,0],[0.3,0],[0.3,0.2]]]`). Problems name the file's line number.
public enum CameraRegistryCSV {
    static let requiredColumns = ["id", "owner", "kind", "place_type", "lat", "lon", "stream", "confidentiality"]

    public static func validate(_ text: String) throws(GeoError) -> (cameras: [Camera], problems: [GeoError]) {
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let headerLine = lines.first else { throw GeoError(.registryInvalid, message: "the file is empty", field: "line 1") }
        guard let header = fields(headerLine)?.map({ $0.trimmingCharacters(in: .whitespaces) }) else {
            throw GeoError(.registryInvalid, message: unterminated, field: "line 1")
        }
        let missing = requiredColumns.filter { !header.contains($0) }
        guard missing.isEmpty else {
            throw GeoError(.registryInvalid, message: "missing columns: \(missing.joined(separator: ", "))", field: "line 1")
        }
        guard lines.count - 1 <= CameraRegistryFile.maximumCameras else {
            throw GeoError(.registryTooLarge, message: "more than \(CameraRegistryFile.maximumCameras) cameras", field: nil)
        }
        var cameras: [Camera] = []
        var lineNumbers: [Int] = []
        var problems: [GeoError] = []
        for (offset, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let field = "line \(offset + 1)"
            do throws(GeoError) {
                cameras.append(try camera(line, header: header, field: field))
                lineNumbers.append(offset + 1)
            } catch {
                problems.append(error)
            }
        }
        problems += CameraRegistryFile.duplicateProblems(cameras) { "line \(lineNumbers[$0])" }
        return (cameras, problems)
    }

    private static func camera(_ line: String, header: [String], field: String) throws(GeoError) -> Camera {
        guard let cells = fields(line) else { throw GeoError(.registryInvalid, message: unterminated, field: field) }
        guard cells.count == header.count else {
            throw GeoError(.registryInvalid, message: "\(cells.count) fields, the header has \(header.count)", field: field)
        }
        let row = Dictionary(uniqueKeysWithValues: zip(header, cells))
        func number(_ column: String) throws(GeoError) -> Double? {
            let text = row[column, default: ""].trimmingCharacters(in: .whitespaces)
            if text.isEmpty { return nil }
            guard let value = Double(text), value.isFinite else {
                throw GeoError(.registryInvalid, message: "\(column) '\(text)' is not a number", field: "\(field).\(column)")
            }
            return value
        }
        guard let lat = try number("lat"), let lon = try number("lon") else {
            throw GeoError(.registryInvalid, message: "lat and lon are required", field: "\(field).lat")
        }
        guard let kind = CameraKind(rawValue: row["kind", default: ""]) else {
            throw GeoError(.registryInvalid, message: "unknown kind '\(row["kind", default: ""])'", field: "\(field).kind")
        }
        guard let confidentiality = LocationConfidentiality(rawValue: row["confidentiality", default: ""]) else {
            throw GeoError(.registryInvalid, message: "confidentiality is public or confidential", field: "\(field).confidentiality")
        }
        let tags = row["tags", default: ""].split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var masks: [PrivacyMask] = []
        if let text = row["privacy_masks"], !text.isEmpty {
            guard let decoded = try? JSONDecoder().decode([PrivacyMask].self, from: Data(text.utf8)) else {
                throw GeoError(.registryInvalid, message: "privacy_masks is JSON: [[[x, y], …], …]", field: "\(field).privacy_masks")
            }
            masks = decoded
        }
        // The same checks as a GeoJSON feature, through one code path.
        let feature = RegistryFeature(
            id: row["id", default: ""], owner: row["owner", default: ""], kind: kind, placeType: row["place_type", default: ""],
            lat: lat, lon: lon, heading: try number("heading_deg"), fieldOfView: try number("fov_deg"), range: try number("range_m"),
            stream: row["stream", default: ""], confidentiality: confidentiality, tags: tags, privacyMasks: masks)
        return try feature.camera(field: field)
    }

    static let unterminated = "an unterminated quoted field (quoted line breaks are not supported)"

    /// Splits one CSV line, honouring double quotes ("" is a quote inside a quoted field);
    /// nil when a quoted field is not closed.
    static func fields(_ line: String) -> [String]? {
        var cells: [String] = []
        var current = ""
        var quoted = false
        var iterator = line.makeIterator()
        var pending: Character? = nil
        while let character = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if character == "\"" {
                    let next = iterator.next()
                    if next == "\"" { current.append("\"") } else { quoted = false; pending = next }
                } else {
                    current.append(character)
                }
            } else if character == "\"" && current.isEmpty {
                quoted = true
            } else if character == "," {
                cells.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        if quoted { return nil }
        cells.append(current)
        return cells
    }
}
