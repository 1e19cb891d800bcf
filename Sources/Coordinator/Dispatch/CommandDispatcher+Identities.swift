import Bus
import Foundation
import Geo
import Incidents
import MediaRelay
import VigilProtocol

extension CommandDispatcher {
    /// Who asks, and the agency's users and key.
    func performIdentities(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        switch ProtocolOperation(rawValue: header.op) {
        case .sessionIdentity:
            return Self.identityReply(header, request)
        case .userAdd:
            let user = try BusProtocol.decodeBody(User.self, from: request.payload)
            guard user.agency == request.agency else {
                throw BusProtocol.ErrorBody(.notOwnAgency, message: "\(request.agency) adds users to itself only", field: "body.agency")
            }
            // The agency's own certificate, or one of its owner-admin users, manages its users.
            try await requireOwnerAdmin(request, action: "user.add")
            try await users.add(user, by: request.agency)
            clientKeys.admit(user)
            return BusProtocol.successReply(id: header.id, result: user)
        case .userSuspend, .userReinstate, .userRemove:
            let body = try BusProtocol.decodeBody(UserStatusBody.self, from: request.payload).validated()
            try await requireOwnerAdmin(request, action: header.op)
            let status: UserStatus = switch ProtocolOperation(rawValue: header.op) {
            case .userSuspend: .suspended
            case .userRemove: .removed
            default: .active
            }
            // A withdrawal takes effect before it is recorded: the audit channel publishes the
            // record as soon as it is committed, and the withdrawn key must not receive it. From
            // the next message on, requests with the key are refused, subscriptions end with the
            // event endpoint's connections, and open views end at their next decision.
            let before = try await users.user(body.user).flatMap { $0.agency == request.agency ? $0 : nil }
            if status != .active, var withdrawn = before {
                withdrawn.status = status
                clientKeys.admit(withdrawn)
                bus.dropSubscribers()
            }
            let changed: User
            do {
                changed = try await users.setStatus(
                    body.user, of: request.agency, to: status, reason: body.reason, by: request.agency, actingUser: request.user)
            } catch {
                if let before { clientKeys.admit(before) }
                throw error
            }
            clientKeys.admit(changed)
            return BusProtocol.successReply(id: header.id, result: changed)
        case .agencyRotateKey:
            let body = try BusProtocol.decodeBody(AgencyKeyBody.self, from: request.payload).validated()
            try await requireOwnerAdmin(request, action: header.op)
            try await users.setAgencyKey(request.agency, to: body.publicKey, rotatedBy: request.agency, actingUser: request.user, reason: body.reason)
            clientKeys.rotate(agency: request.agency, to: body.publicKey)
            bus.dropSubscribers()
            return BusProtocol.successReply(id: header.id, result: ["agency": request.agency, "public_key": body.publicKey])
        case .userList:
            return BusProtocol.successReply(id: header.id, result: try await users.users(of: request.agency))
        case .consoleCode:
            // A person logs in to the console, never an agency's systems: a named user, active,
            // with a clearance still valid, asking with their own key.
            guard let id = request.user, let user = try await users.user(id), user.agency == request.agency, user.isCleared(), request.origin == nil else {
                try await audit.append(AuditRecord(action: "console.code.refused", agency: request.agency, user: request.user, reason: "named_user_required"))
                throw BusProtocol.ErrorBody(
                    .namedUserRequired, message: "only an active named user, with their own key and a valid clearance, may log in to the console", field: "op")
            }
            let (code, login) = consoleCodes.issue(for: request.identity, clearance: user.clearanceExpires)
            try await audit.append(AuditRecord(
                action: "console.code.issued", agency: request.agency, user: id, details: ["session_ends": AuditLog.timestamp(login.sessionEnds)]))
            return BusProtocol.successReply(id: header.id, result: ConsoleCodeResult(
                code: code, expiresInS: Int(ConsoleCodes.lifetime.components.seconds), sessionEndsAt: login.sessionEnds))
        default:
            throw Self.unknownOperation(header)
        }
    }
}
