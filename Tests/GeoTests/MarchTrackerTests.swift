import Foundation
import Testing
@testable import Geo

/// The Brussels index, the Gare du Midi → Schuman route (5.3 km) and the major roads, loaded once.
private let brussels: (index: CameraIndex, route: GeoJSONGeometry, roads: RoadNetwork) = {
    let projection = try! Projection(crs: .belgianLambert2008)
    let index = try! CameraIndex(
        cameras: try! CameraRegistryFile.read(contentsOf: fixturesFolder.appendingPathComponent("brussels/cameras.geojson")),
        projection: projection)
    struct Collection: Decodable { struct Feature: Decodable { var geometry: GeoJSONGeometry }; var features: [Feature] }
    let routes = try! JSONDecoder().decode(
        Collection.self, from: Data(contentsOf: fixturesFolder.appendingPathComponent("sources/brussels_demo_routes_osm2013.geojson")))
    let roads = try! RoadNetwork(contentsOf: fixturesFolder.appendingPathComponent("sources/brussels_roads_major_osm2013.geojson"), projection: projection)
    return (index, routes.features[2].geometry, roads)
}()

private func tracker(_ configure: (inout MarchConfiguration) -> Void = { _ in }) throws -> MarchTracker {
    var configuration = MarchConfiguration()
    configure(&configuration)
    return try MarchTracker(index: brussels.index, route: brussels.route, roads: brussels.roads, configuration: configuration)
}

private let start = Date(timeIntervalSince1970: 1_800_000_000)

@Suite("March window")
struct MarchTrackerTests {
    @Test func labelsEachCameraWithItsSectionOfTheWindow() throws {
        var march = try tracker()
        #expect(abs(march.routeLengthMeters - 5_275) < 30)
        let update = try march.update(head: .measure(2_000), tail: .measure(1_500), at: start)
        #expect(update.onRoute)
        #expect(update.added.count == update.cameras.count && update.removed.isEmpty)
        for camera in update.cameras {
            switch camera.section {
            case .ahead: #expect(camera.alongMeters! > 2_000 && camera.alongMeters! <= 2_300)
            case .occupied: #expect(camera.alongMeters! >= 1_500 && camera.alongMeters! <= 2_000)
            case .behind: #expect(camera.alongMeters! >= 1_300 && camera.alongMeters! < 1_500)
            case .sideStreet: #expect(camera.alongMeters! >= 1_300 && camera.alongMeters! <= 2_300 && camera.distanceMeters <= 80)
            case .arrival, .fallback: Issue.record("unexpected section \(camera.section)")
            }
            if camera.section != .sideStreet { #expect(camera.distanceMeters <= 30) }
        }
        let sections = update.cameras.map(\.section)
        #expect(sections == sections.sorted())  // ranked by section
        #expect(Set(sections).isSuperset(of: [.ahead, .occupied, .behind, .sideStreet]))
        #expect(march.junctionCount > 5)
    }

    @Test func hysteresisKeepsTheWallStillAsTheHeadWavers() throws {
        var march = try tracker { $0.dwellSeconds = 600 }
        let first = try march.update(head: .measure(2_000), tail: .measure(1_500), at: start)
        let edge = try #require(first.cameras.filter { $0.section == .ahead }.max { $0.alongMeters! < $1.alongMeters! })
        // The head steps back 30 m: the farthest camera ahead is now beyond the entering edge but within the margin.
        let back = try march.update(head: .measure(1_970), tail: .measure(1_470), at: start.addingTimeInterval(10))
        #expect(back.cameras.contains { $0.camera.id == edge.camera.id })
        #expect(!back.removed.contains(edge.camera.id))
        // Back beyond the margin (50 m), it leaves.
        let far = try march.update(head: .measure(1_900), tail: .measure(1_400), at: start.addingTimeInterval(20))
        if edge.alongMeters! > 2_250 { #expect(far.removed.contains(edge.camera.id)) }
    }

    @Test func aCameraBetweenTheEdgeAndTheMarginLeavesAfterTheDwellTime() throws {
        var march = try tracker { $0.dwellSeconds = 30 }
        let first = try march.update(head: .measure(2_000), tail: .measure(1_500), at: start)
        let edge = try #require(first.cameras.filter { $0.section == .ahead && $0.alongMeters! > 2_270 }.first)
        let soon = try march.update(head: .measure(1_960), tail: .measure(1_460), at: start.addingTimeInterval(20))
        #expect(soon.cameras.contains { $0.camera.id == edge.camera.id })
        let later = try march.update(head: .measure(1_960), tail: .measure(1_460), at: start.addingTimeInterval(40))
        #expect(later.removed.contains(edge.camera.id))
    }

    @Test func anAdvancingMarchNeverDropsACameraItWillShowAgain() throws {
        var march = try tracker()
        var everRemoved = Set<String>()
        var flickers = 0
        for step in 0...150 {
            let head = 1_000 + Double(step) * 15
            let update = try march.update(head: .measure(head), tail: .measure(head - 400), at: start.addingTimeInterval(Double(step) * 10))
            flickers += update.added.filter { everRemoved.contains($0.camera.id) }.count
            everRemoved.formUnion(update.removed)
        }
        #expect(flickers == 0)
        #expect(!everRemoved.isEmpty)
    }

    @Test func theHeadSpeedStretchesTheLookAhead() throws {
        var march = try tracker { $0.aheadSeconds = 120 }
        _ = try march.update(head: .measure(1_000), tail: .measure(800), at: start)
        let fast = try march.update(head: .measure(1_200), tail: .measure(1_000), at: start.addingTimeInterval(30))  // 6.7 m/s
        #expect(abs((fast.headSpeed ?? 0) - 200.0 / 30) < 0.01)
        let farthest = fast.cameras.filter { $0.section == .ahead }.compactMap(\.alongMeters).max() ?? 0
        #expect(farthest > 1_200 + 300)  // beyond the fixed 300 m: 120 s at 6.7 m/s is 800 m
        #expect(farthest <= 1_200 + 800)
    }

    @Test func aHeadOffTheRouteFallsBackToARadiusAndComesBack() throws {
        var march = try tracker()
        _ = try march.update(head: .measure(2_000), tail: .measure(1_500), at: start)
        let off = try march.update(head: .point(try GeoPoint(lat: 50.8500, lon: 4.3300)), tail: .measure(1_500), at: start.addingTimeInterval(60))
        #expect(!off.onRoute)
        #expect(off.events == ["head_left_route"])
        #expect(off.headOffsetMeters > 75)
        #expect(off.cameras.allSatisfy { $0.section == .fallback && $0.distanceMeters <= 250 })
        let back = try march.update(head: .measure(2_100), tail: .measure(1_600), at: start.addingTimeInterval(120))
        #expect(back.onRoute && back.events == ["head_back_on_route"])
    }

    @Test func theArrivalAreaAppearsAsTheHeadNearsTheEnd() throws {
        var march = try tracker()
        let early = try march.update(head: .measure(3_000), tail: .measure(2_500), at: start)
        #expect(!early.cameras.contains { $0.section == .arrival })
        let near = try march.update(head: .measure(march.routeLengthMeters - 200), tail: .measure(4_000), at: start.addingTimeInterval(600))
        #expect(near.events.contains("arrival_near"))
        #expect(near.cameras.contains { $0.section == .arrival })
    }

    @Test func snapsPointsOntoTheRoute() throws {
        var march = try tracker()
        // A point a few metres off the route near Porte de Hal.
        let update = try march.update(head: .point(try GeoPoint(lat: 50.8330, lon: 4.3445)), tail: .measure(0), at: start)
        #expect(update.onRoute)
        #expect(update.headMeters > 0 && update.headMeters < march.routeLengthMeters)
    }

    @Test func refusesAnImpossibleMarch() throws {
        var march = try tracker()
        let reversed = #expect(throws: GeoError.self) { try march.update(head: .measure(100), tail: .measure(500), at: start) }
        #expect(reversed?.code == "march_invalid")
        let beyond = #expect(throws: GeoError.self) { try march.update(head: .measure(99_999), tail: .measure(0), at: start) }
        #expect(beyond?.field == "head")
        let badConfiguration = #expect(throws: GeoError.self) { try tracker { $0.aheadMeters = -1 } }
        #expect(badConfiguration?.field == "ahead_meters")
    }
}
