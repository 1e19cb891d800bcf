import Foundation
import Geo

/// The sharing agreements of `fixtures/agreements.json`, expanded into grants: one per
/// receiving agency, or with `per_police_zone`, one per police zone with its territory as scope.
public enum AgreementFixture {
    struct Template: Decodable {
        var owner: String
        var agencies: [String]?
        var perPoliceZone: Bool?
        var scope: GrantScope
        var modes: [AccessMode]
        var condition: GrantCondition
        var purpose: String
        var legalBasis: String
        var agreement: String?
    }

    struct File: Decodable {
        var agreements: [Template]
    }

    /// The police zones of `brussels_police_zones.geojson`: each zone's code and territory.
    public static func policeZones(contentsOf url: URL) throws -> [(code: String, area: GeoJSONGeometry)] {
        struct Zones: Decodable {
            struct Feature: Decodable {
                struct Properties: Decodable { var police_zone_code: Int }
                var properties: Properties
                var geometry: GeoJSONGeometry
            }
            var features: [Feature]
        }
        return try JSONDecoder().decode(Zones.self, from: Data(contentsOf: url)).features.map { ("\($0.properties.police_zone_code)", $0.geometry) }
    }

    /// - Parameter policeZones: each police zone's code (`5340`) and territory.
    public static func read(contentsOf url: URL, policeZones: [(code: String, area: GeoJSONGeometry)], validFrom: Date) throws -> [Grant] {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let file = try decoder.decode(File.self, from: Data(contentsOf: url))
        var grants: [Grant] = []
        for template in file.agreements {
            var targets: [(agency: String, scope: GrantScope)] = (template.agencies ?? []).map { ($0, template.scope) }
            if template.perPoliceZone == true {
                for zone in policeZones {
                    var scope = template.scope
                    scope.area = zone.area
                    scope.areaName = "police zone \(zone.code)"
                    targets.append(("pz-\(zone.code)", scope))
                }
            }
            for target in targets {
                grants.append(Grant(
                    id: "fixture-\(grants.count + 1)", owner: template.owner, agency: target.agency, scope: target.scope, modes: template.modes,
                    validFrom: validFrom, purpose: template.purpose, legalBasis: template.legalBasis, agreement: template.agreement,
                    condition: template.condition))
            }
        }
        return grants
    }
}
