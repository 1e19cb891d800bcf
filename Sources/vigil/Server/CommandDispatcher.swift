import Bus
import Foundation
import Geo
import Incidents
import Logging

/// Turns bus requests into incident operations, replies only after the change is committed,
/// then publishes the change on the incident's channel.
struct CommandDispatcher: Sendable {
    let bus: BusServer
    let incidents: IncidentService
    let logger: Logger

    /// The body of `incident.open` as it travels: coordinates are checked here so that a bad
    /// one gets its own error code rather than a generic decoding error.
    struct OpenBody: Decodable {
        struct Point: Decodable {
            var lat: Double
            var lon: Double
        }

        var kind: String
        var at: Point?
        var radiusMeters: Double?
        var area: GeoJSONGeometry?
        var route: GeoJSONGeometry?
        var head: WirePosition?
        var tail: WirePosition?
        var march: MarchConfiguration?
        var title: String?
        var exercise: Bool?
    }

    /// A march position as it travels: `{"lat": …, "lon": …}` or `{"along_meters": …}`.
    struct WirePosition: Decodable {
        var lat: Double?
        var lon: Double?
        var alongMeters: Double?

        func position(field: String) throws -> MarchPosition {
            if let alongMeters, lat == nil, lon == nil { return .measure(alongMeters) }
            guard let lat, let lon, alongMeters == nil else {
                throw BusProtocol.ErrorBody(code: "bad_request", message: "a position is {lat, lon} or {along_meters}", field: field)
            }
            return .point(try GeoPoint(lat: lat, lon: lon, field: field))
        }
    }

    struct RedrawBody: Decodable {
        var incident: Int64
        var at: OpenBody.Point?
        var radiusMeters: Double?
        var area: GeoJSONGeometry?
    }

    /// The area of an `incident.open` or `incident.redraw`: `at` with `radius_meters`, or `area`.
    private func area(at: OpenBody.Point?, radiusMeters: Double?, perimeter: GeoJSONGeometry?) throws -> IncidentArea {
        switch (at, radiusMeters, perimeter) {
        case (let at?, let radius?, nil):
            return .circle(center: try GeoPoint(lat: at.lat, lon: at.lon, field: "body.at"), radiusMeters: radius)
        case (nil, nil, let polygon?):
            return .perimeter(polygon)
        default:
            throw BusProtocol.ErrorBody(code: "bad_request", message: "give at with radius_meters, or area, or (to open a march) route", field: "body")
        }
    }

    struct MoveBody: Decodable {
        var incident: Int64
        var head: WirePosition
        var tail: WirePosition
    }

    struct IncidentReference: Codable {
        var incident: Int64
    }

    func handle(_ request: BusRequest) async {
        let header: BusProtocol.RequestHeader
        do {
            header = try BusProtocol.decodeHeader(request.payload)
        } catch {
            bus.reply(to: request.peer, payload: BusProtocol.errorReply(id: nil, error))
            return
        }
        let reply: Data
        do {
            reply = try await perform(header, request)
        } catch let error as BusProtocol.ErrorBody {
            reply = BusProtocol.errorReply(id: header.id, error)
        } catch let error as IncidentError {
            reply = BusProtocol.errorReply(id: header.id, .init(code: error.code, message: error.message, field: error.field))
        } catch let error as GeoError {
            reply = BusProtocol.errorReply(id: header.id, .init(code: error.code, message: error.message, field: error.field))
        } catch {
            logger.error("request failed", metadata: ["bus.op": "\(header.op)", "error": "\(error)"])
            reply = BusProtocol.errorReply(id: header.id, .init(code: "internal_error", message: "the server could not handle this request"))
        }
        bus.reply(to: request.peer, payload: reply)
    }

    private func perform(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        switch header.op {
        case "incident.open":
            let body = try BusProtocol.decodeBody(OpenBody.self, from: request.payload)
            guard let kind = IncidentKind(rawValue: body.kind) else {
                throw BusProtocol.ErrorBody(
                    code: "kind_invalid", message: "kind must be one of \(IncidentKind.allCases.map(\.rawValue).joined(separator: ", "))",
                    field: "body.kind")
            }
            let change: IncidentChange
            if let route = body.route {
                guard let head = body.head, let tail = body.tail else {
                    throw BusProtocol.ErrorBody(code: "bad_request", message: "a march needs head and tail", field: "body.head")
                }
                change = try await incidents.openMarch(
                    OpenMarchRequest(
                        kind: kind, route: route, head: try head.position(field: "body.head"), tail: try tail.position(field: "body.tail"),
                        configuration: body.march ?? MarchConfiguration(), title: body.title, exercise: body.exercise),
                    by: request.agency)
            } else {
                change = try await incidents.open(
                    OpenIncidentRequest(
                        kind: kind, area: try area(at: body.at, radiusMeters: body.radiusMeters, perimeter: body.area),
                        title: body.title, exercise: body.exercise),
                    by: request.agency)
            }
            publish(change)
            return BusProtocol.successReply(
                id: header.id, result: IncidentSnapshot(incident: change.incident, cameras: change.added, route: body.route, area: body.area))
        case "incident.redraw":
            let body = try BusProtocol.decodeBody(RedrawBody.self, from: request.payload)
            let change = try await incidents.redraw(
                body.incident, to: try area(at: body.at, radiusMeters: body.radiusMeters, perimeter: body.area), by: request.agency)
            publish(change)
            return BusProtocol.successReply(id: header.id, result: change)
        case "incident.move":
            let body = try BusProtocol.decodeBody(MoveBody.self, from: request.payload)
            let change = try await incidents.move(
                body.incident, head: try body.head.position(field: "body.head"), tail: try body.tail.position(field: "body.tail"),
                by: request.agency)
            publish(change)
            return BusProtocol.successReply(id: header.id, result: change)
        case "incident.close":
            let body = try BusProtocol.decodeBody(IncidentReference.self, from: request.payload)
            let change = try await incidents.close(body.incident, by: request.agency)
            publish(change)
            return BusProtocol.successReply(id: header.id, result: IncidentSnapshot(incident: change.incident, cameras: []))
        case "incident.snapshot":
            let body = try BusProtocol.decodeBody(IncidentReference.self, from: request.payload)
            return BusProtocol.successReply(id: header.id, result: try await incidents.snapshot(body.incident))
        default:
            throw BusProtocol.ErrorBody(code: "unknown_operation", message: "unknown operation '\(header.op)'", field: "op")
        }
    }

    private func publish(_ change: IncidentChange) {
        bus.publish(
            topic: BusProtocol.incidentTopic(change.incidentId),
            payload: BusProtocol.event(
                channel: "incident/\(change.incidentId)", seq: change.sequence, type: "incident.\(change.change.rawValue)",
                at: change.at, body: change))
    }
}
