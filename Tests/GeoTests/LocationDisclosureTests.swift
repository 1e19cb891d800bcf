import TestSupport
import Foundation
import Testing
@testable import Geo

/// The attack of issue 12: an agency that may watch a confidential camera but not locate it asks
/// many selections (centres, radii, areas, routes, k nearest) and reads what comes back (whether
/// the camera is in, its distance, its rank, its place along the route). Under the server's
/// disclosure rule every answer must be the same wherever the camera stands in its 500 m square.
@Suite("Location disclosure")
struct LocationDisclosureTests {
    let projection: Projection
    /// The 500 m square that holds the secret camera, in EPSG:3812.
    let cellOrigin: MetricPoint

    init() throws {
        projection = try Projection(crs: .belgianLambert2008)
        let anchor = try projection.metric(try GeoPoint(lat: 50.8467, lon: 4.3525))
        cellOrigin = MetricPoint(x: (anchor.x / 500).rounded(.down) * 500, y: (anchor.y / 500).rounded(.down) * 500)
    }

    /// A registry of public cameras around the square, and the secret one at `spot` inside it.
    func registry(secretAt spot: MetricPoint) throws -> [Camera] {
        var random = TestRandom(seed: 7)
        var cameras: [Camera] = []
        for index in 0..<60 {
            let point = MetricPoint(x: cellOrigin.x + Double.random(in: -1500...2000, using: &random), y: cellOrigin.y + Double.random(in: -1500...2000, using: &random))
            let position = try projection.geographic(point)
            cameras.append(try camera(String(format: "public-%02d", index), position.lat, position.lon))
        }
        let secret = try projection.geographic(spot)
        cameras.append(try camera("secret", secret.lat, secret.lon, confidentiality: .confidential))
        return cameras
    }

    /// What the attacker reads of the secret camera in each answer: its rank, distance and
    /// measure along the route, or nothing when it is not selected.
    func observations(_ index: CameraIndex, queries: [SelectionQuery]) throws -> [String] {
        try queries.map { query in
            let matches = try index.select(query)
            guard let rank = matches.firstIndex(where: { $0.camera.id == "secret" }) else { return "absent of \(matches.count)" }
            let match = matches[rank]
            return "rank \(rank) of \(matches.count), \(match.distanceMeters) m, along \(match.alongMeters ?? -1), \(match.reason)"
        }
    }

    func queries() throws -> [SelectionQuery] {
        var random = TestRandom(seed: 42)
        var queries: [SelectionQuery] = []
        func point(_ spread: ClosedRange<Double>) throws -> GeoPoint {
            try projection.geographic(MetricPoint(
                x: cellOrigin.x + Double.random(in: spread, using: &random), y: cellOrigin.y + Double.random(in: spread, using: &random)))
        }
        func coordinates(_ points: [GeoPoint]) -> GeoJSONGeometry.Coordinates {
            .list(points.map { .position([$0.lon, $0.lat]) })
        }
        for _ in 0..<150 {
            queries.append(SelectionQuery(type: .radius, at: try point(-800...1300), meters: Double.random(in: 5...900, using: &random)))
        }
        for _ in 0..<40 {
            queries.append(SelectionQuery(type: .nearest, at: try point(-800...1300), count: Int.random(in: 1...12, using: &random)))
        }
        for _ in 0..<40 {
            let start = try point(-1000...1500), end = try point(-1000...1500)
            queries.append(SelectionQuery(
                type: .route, geometry: GeoJSONGeometry(type: "LineString", coordinates: coordinates([start, end])),
                widthMeters: Double.random(in: 10...300, using: &random)))
        }
        for _ in 0..<40 {
            let corner = try point(-600...900)
            let side = Double.random(in: 20...600, using: &random) / 111_000
            let ring = [corner, try GeoPoint(lat: corner.lat + side, lon: corner.lon), try GeoPoint(lat: corner.lat + side, lon: corner.lon + side * 1.6),
                        try GeoPoint(lat: corner.lat, lon: corner.lon + side * 1.6), corner]
            queries.append(SelectionQuery(type: .area, geometry: GeoJSONGeometry(type: "Polygon", coordinates: .list([coordinates(ring)]))))
        }
        return queries
    }

    /// Places spread over the square, corners and edges included.
    var spotsInTheSquare: [MetricPoint] {
        [(1, 1), (499, 499), (1, 499), (499, 1), (250, 250), (120, 380), (410, 60)].map {
            MetricPoint(x: cellOrigin.x + $0.0, y: cellOrigin.y + $0.1)
        }
    }

    @Test func everyAnswerIsTheSameWhereverTheCameraStandsInItsSquare() throws {
        let queries = try queries()
        let answers = try spotsInTheSquare.map { spot in
            try observations(try CameraIndex(cameras: try registry(secretAt: spot), projection: projection, disclosure: .confidentialCells), queries: queries)
        }
        for other in answers.dropFirst() { #expect(other == answers[0]) }
        // The queries do see the camera: the test is not vacuous.
        #expect(answers[0].filter { !$0.hasPrefix("absent") }.count > 50)
    }

    @Test func exactPositionsWouldGiveTheCameraAway() throws {
        // The same attack against exact positions (the host's own tools) tells the spots apart:
        // this is what the disclosure rule closes on the server.
        let queries = try queries()
        let answers = try spotsInTheSquare.map { spot in
            try observations(try CameraIndex(cameras: try registry(secretAt: spot), projection: projection), queries: queries)
        }
        #expect(Set(answers).count == answers.count)
    }

    @Test func aQueryThatReachesTheCameraNeverMissesIt() throws {
        let queries = try queries()
        for spot in spotsInTheSquare {
            let cameras = try registry(secretAt: spot)
            let exact = try observations(try CameraIndex(cameras: cameras, projection: projection), queries: queries)
            let disclosed = try observations(try CameraIndex(cameras: cameras, projection: projection, disclosure: .confidentialCells), queries: queries)
            for (truth, answer) in zip(exact, disclosed) where !truth.hasPrefix("absent") {
                #expect(!answer.hasPrefix("absent"), "selected at its true place, missed by its square: \(truth)")
            }
        }
    }

    @Test func publicCamerasKeepTheirExactPositions() throws {
        let cameras = try registry(secretAt: spotsInTheSquare[0])
        let queries = try queries()
        let exact = try CameraIndex(cameras: cameras, projection: projection)
        let disclosed = try CameraIndex(cameras: cameras, projection: projection, disclosure: .confidentialCells)
        for query in queries where query.type == .radius {
            let publicOnly = { (matches: [CameraMatch]) in matches.filter { $0.camera.id != "secret" }.map { "\($0.camera.id) \($0.distanceMeters)" } }
            #expect(publicOnly(try exact.select(query)) == publicOnly(try disclosed.select(query)))
        }
    }
}
