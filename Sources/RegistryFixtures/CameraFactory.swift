import Geo
import Foundation

/// Builds fixture cameras with the conventions every generator shares.
enum CameraFactory {
    /// The stream source placeholder for a fixture camera: the camera simulator serves `sim://ID`.
    static func placeholderStream(_ id: String) -> String { "sim://\(id)" }

    static func make(
        id: String, owner: String, kind: CameraKind, placeType: String, position: GeoPoint,
        heading: Double?, fieldOfView: Double?, range: Double,
        confidentiality: LocationConfidentiality = .public, tags: [String] = []
    ) throws -> Camera {
        Camera(
            id: id, owner: owner, kind: kind, placeType: placeType,
            position: position.roundedToCentimetre(),
            headingDegrees: heading.map { (MetricGeometry.normalized($0) * 10).rounded() / 10 }.map { $0 >= 360 ? 0 : $0 },
            fieldOfViewDegrees: fieldOfView.map { $0.rounded() },
            rangeMeters: range.rounded(),
            stream: placeholderStream(id), confidentiality: confidentiality, tags: tags)
    }

    /// A lowercase ASCII slug of a place name (`"PORTE DE NAMUR"` → `porte-de-namur`).
    static func slug(_ name: String) -> String {
        let folded = name.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil).lowercased()
        var slug = ""
        for character in folded {
            if character.isASCII && (character.isLetter || character.isNumber) {
                slug.append(character)
            } else if !slug.hasSuffix("-") {
                slug.append("-")
            }
        }
        return slug.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
    }
}
