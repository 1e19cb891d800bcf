import Foundation
import Testing
@testable import Geo

@Suite("Camera registry file")
struct CameraRegistryFileTests {
    @Test func roundTripsCameras() throws {
        let cameras = [try camera("a-1", 50.85, 4.35), try camera("b-2", 50.86, 4.36, confidentiality: .confidential)]
        let decoded = try CameraRegistryFile.decode(try CameraRegistryFile.encode(cameras, metadata: ["license": "test"]))
        #expect(decoded == cameras)
    }

    @Test func keepsPrivacyMasksAndRefusesBadOnes() throws {
        let mask: PrivacyMask = [[0, 0], [0.4, 0], [0.4, 0.25], [0, 0.25]]
        let base = try camera("m-1", 50.85, 4.35)
        let masked = Camera(
            id: base.id, owner: base.owner, kind: base.kind, placeType: base.placeType, position: base.position, headingDegrees: base.headingDegrees,
            fieldOfViewDegrees: base.fieldOfViewDegrees, rangeMeters: base.rangeMeters, stream: base.stream, confidentiality: base.confidentiality,
            tags: base.tags, privacyMasks: [mask])
        let encoded = try CameraRegistryFile.encode([masked], metadata: [:])
        #expect(String(decoding: encoded, as: UTF8.self).contains("privacy_masks"))
        #expect(try CameraRegistryFile.decode(encoded) == [masked])
        #expect(!String(decoding: try CameraRegistryFile.encode([base], metadata: [:]), as: UTF8.self).contains("privacy_masks"))

        for bad in ["[[[0,0],[1,0]]]", "[[[0,0],[1.5,0],[1,1]]]", "[[[0,0,0],[1,0],[1,1]]]"] {
            let text = #"{"type":"FeatureCollection","features":[\#(feature("bad").replacingOccurrences(of: #""confidentiality":"public""#, with: #""confidentiality":"public","privacy_masks":\#(bad)"#))]}"#
            do {
                _ = try CameraRegistryFile.decode(Data(text.utf8))
                Issue.record("accepted the mask \(bad)")
            } catch {
                #expect(error.field == "features[0].properties.privacy_masks")
            }
        }
        // At most 256 points in all (a playback link carries them), kept to 1/10,000 of the picture.
        let ring = { (points: Int) in "[" + (0..<points).map { 2 * Double.pi * Double($0) / Double(points) }.map { "[\(0.5 + 0.4 * cos($0)),\(0.5 + 0.4 * sin($0))]" }.joined(separator: ",") + "]" }
        for (masks, admitted) in [("[\(ring(200)),\(ring(56))]", true), ("[\(ring(200)),\(ring(57))]", false)] {
            let text = #"{"type":"FeatureCollection","features":[\#(feature("big").replacingOccurrences(of: #""confidentiality":"public""#, with: #""confidentiality":"public","privacy_masks":\#(masks)"#))]}"#
            #expect(((try? CameraRegistryFile.decode(Data(text.utf8))) != nil) == admitted, "\(masks.count) characters")
        }
        let fine = #"{"type":"FeatureCollection","features":[\#(feature("fine").replacingOccurrences(of: #""confidentiality":"public""#, with: #""confidentiality":"public","privacy_masks":[[[0.123456,0.1],[0.99995,0.00004],[0.5,0.5]]]"#))]}"#
        #expect(try CameraRegistryFile.decode(Data(fine.utf8)).first?.privacyMasks == [[[0.1235, 0.1], [1, 0], [0.5, 0.5]]])

        let csv = "id,owner,kind,place_type,lat,lon,stream,confidentiality,privacy_masks\nc-1,stib,metro,hall,50.85,4.35,sim://c-1,public,\"[[[0,0],[0.5,0],[0.5,0.5]]]\"\n"
        let (cameras, problems) = try CameraRegistryCSV.validate(csv)
        #expect(problems.isEmpty && cameras.first?.privacyMasks == [[[0, 0], [0.5, 0], [0.5, 0.5]]])
    }

    @Test func readsTheBrusselsFixture() throws {
        let cameras = try CameraRegistryFile.read(contentsOf: fixturesFolder.appendingPathComponent("brussels/cameras.geojson"))
        #expect(cameras.count >= 4_500)
        let owners = Dictionary(grouping: cameras, by: \.owner).mapValues(\.count)
        #expect((owners["stib"] ?? 0) > 2_000)
        #expect(Set(owners.keys).isSuperset(of: ["pz-5339", "pz-5340", "pz-5341", "pz-5342", "pz-5343", "pz-5344", "bruxelles-mobilite"]))
        let marseille = try CameraRegistryFile.read(contentsOf: fixturesFolder.appendingPathComponent("marseille/cameras.geojson"))
        #expect(marseille.allSatisfy { $0.confidentiality == .confidential && $0.kind == .estate })
        #expect(Set(marseille.compactMap { $0.tags.first { $0.hasPrefix("estate:") } }).count == 10)
    }

    private func feature(_ id: String, lon: Double = 4.35, lat: Double = 50.85, range: Double = 100) -> String {
        """
        {"type":"Feature","geometry":{"type":"Point","coordinates":[\(lon),\(lat)]},
         "properties":{"id":"\(id)","owner":"stib","kind":"metro","place_type":"hall","range_m":\(range),
                       "stream":"sim://\(id)","confidentiality":"public"}}
        """
    }

    @Test func reportsTheIndexAndReasonOfABadFeature() {
        let text = #"{"type":"FeatureCollection","features":[\#(feature("ok")),\#(feature("bad", lat: 91))]}"#
        do {
            _ = try CameraRegistryFile.decode(Data(text.utf8))
            Issue.record("accepted a latitude of 91")
        } catch {
            #expect(error.code == "coordinate_out_of_range")
            #expect(error.field == "features[1].geometry.coordinates")
        }
    }

    @Test func refusesDuplicateIdsAndBadRanges() {
        let duplicate = #"{"type":"FeatureCollection","features":[\#(feature("x")),\#(feature("x"))]}"#
        let error = #expect(throws: GeoError.self) { try CameraRegistryFile.decode(Data(duplicate.utf8)) }
        #expect(error?.code == "registry_duplicate_id")
        #expect(error?.field == "features[1].properties.id")
        let badRange = #"{"type":"FeatureCollection","features":[\#(feature("x", range: -1))]}"#
        do {
            _ = try CameraRegistryFile.decode(Data(badRange.utf8))
            Issue.record("accepted a negative range")
        } catch {
            #expect(error.field == "features[0].properties.range_m")
        }
    }

    @Test(arguments: ["", "[]", #"{"type":"FeatureCollection"}"#, #"{"type":"Topology","features":[]}"#])
    func refusesWhatIsNotAFeatureCollection(_ text: String) {
        do {
            _ = try CameraRegistryFile.decode(Data(text.utf8))
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == "registry_invalid")
        }
    }
}
