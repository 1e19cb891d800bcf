import Bus
import Foundation
import Geo
import Incidents
import MediaRelay
import VigilProtocol

extension CommandDispatcher {
    /// The audit log, for auditors.
    func performAudit(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        switch ProtocolOperation(rawValue: header.op) {
        case .auditQuery:
            let body = try BusProtocol.decodeBody(AuditQueryBody.self, from: request.payload)
            let limit = try body.pageSize()
            let auditor = try await namedUser(request, role: .auditor, action: "audit.read")
            let entries = try await audit.entries(from: body.from, to: body.to, after: body.after ?? 0, limit: limit, filter: body.filter)
            var details = ["entries": "\(entries.count)", "from": body.from ?? "", "to": body.to ?? "", "after": "\(body.after ?? 0)"]
            if let camera = body.camera { details["camera"] = camera }
            if let user = body.user { details["user"] = user }
            if let incident = body.incident { details["incident"] = "\(incident)" }
            try await audit.append(AuditRecord(action: "audit.read", agency: auditor.agency, user: auditor.id, badge: auditor.badge, details: details))
            return BusProtocol.successReply(
                id: header.id, result: AuditQueryResult(entries: entries, nextAfter: entries.count == limit ? entries.last?.sequence : nil))
        case .auditVerify:
            let body = try BusProtocol.decodeBody(AuditVerifyBody.self, from: request.payload)
            let auditor = try await namedUser(request, role: .auditor, action: "audit.verify")
            let verification = try await audit.verify()
            var checkpoint: CheckpointVerification?
            if let kept = body.checkpoint { checkpoint = try await audit.verify(kept, serverKey: auditKey) }
            var details = ["entries": "\(verification.entries)", "intact": "\(verification.intact)"]
            if let checkpoint { details["checkpoint"] = checkpoint.holds ? "holds:\(checkpoint.sequence)" : checkpoint.code ?? "fails" }
            try await audit.append(AuditRecord(action: "audit.verified", agency: auditor.agency, user: auditor.id, badge: auditor.badge, details: details))
            return BusProtocol.successReply(id: header.id, result: AuditVerifyResult(verification, checkpoint: checkpoint))
        default:
            throw Self.unknownOperation(header)
        }
    }
}
