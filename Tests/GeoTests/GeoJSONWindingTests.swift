import Testing
@testable import Geo

/// Exports wind polygons as RFC 7946 requires: exterior rings counter-clockwise, holes clockwise.
@Suite("GeoJSON winding")
struct GeoJSONWindingTests {
    func ring(_ points: [[Double]]) -> GeoJSONGeometry.Coordinates {
        .list(points.map { .position($0) })
    }

    let clockwise: [[Double]] = [[4.35, 50.84], [4.35, 50.85], [4.36, 50.85], [4.36, 50.84], [4.35, 50.84]]
    let holeCounterClockwise: [[Double]] = [[4.352, 50.842], [4.358, 50.842], [4.358, 50.848], [4.352, 50.848], [4.352, 50.842]]

    @Test func aClockwiseExteriorAndACounterClockwiseHoleAreTurned() {
        let drawn = GeoJSONGeometry(type: "Polygon", coordinates: .list([ring(clockwise), ring(holeCounterClockwise)]))
        let wound = drawn.rightHanded
        #expect(wound.coordinates == .list([ring(clockwise.reversed()), ring(holeCounterClockwise.reversed())]))
        #expect(wound.rightHanded == wound, "a right-handed polygon stays as it is")
    }

    @Test func everyPolygonOfAMultiPolygonIsWound() {
        let drawn = GeoJSONGeometry(type: "MultiPolygon", coordinates: .list([.list([ring(clockwise)]), .list([ring(clockwise.reversed())])]))
        #expect(drawn.rightHanded.coordinates == .list([.list([ring(clockwise.reversed())]), .list([ring(clockwise.reversed())])]))
    }

    @Test func otherGeometriesAndDegenerateRingsAreLeftAsTheyAre() {
        let line = GeoJSONGeometry(type: "LineString", coordinates: ring(clockwise))
        #expect(line.rightHanded == line)
        let flat = GeoJSONGeometry(type: "Polygon", coordinates: .list([ring([[4.35, 50.84], [4.36, 50.84], [4.35, 50.84], [4.35, 50.84]])]))
        #expect(flat.rightHanded == flat)
    }
}
