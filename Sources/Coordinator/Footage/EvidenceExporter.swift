import Bus
import Crypto
import Foundation
import Incidents
import Streams
import VigilProtocol

extension FootageService {
    /// Makes an evidence package (brief requirement 10): the consultation is decided and audited
    /// as an export (mode `export`, for both ends of the range, the prosecutor rule included), it
    /// needs an evidence hold covering the camera over the range or a legal reference, then the
    /// original segments are copied untouched, the viewing copy made (masks, watermark), and the
    /// manifest with every file's SHA-256 signed with the server's key. Audited as
    /// `evidence.exported` with the manifest's hash.
    ///
    /// - Throws: `export_invalid`, `export_basis_required`, `hold_not_found`, `hold_invalid`, the
    ///   decision function's refusals, `footage_unavailable`.
    public func export(_ body: FootageExportBody, agency: String, user: String?, at now: Date = Date()) async throws -> FootageExportResult {
        guard body.from < body.to, body.to.timeIntervalSince(body.from) <= FootageExportBody.maximumSeconds, body.to <= now else {
            throw IncidentError(.exportInvalid, message: "from must be before to, at most 24 h apart, and not in the future", field: "body.from")
        }
        let legalReference = body.legalReference?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let holdID = body.hold {
            let hold = try await holds.hold(holdID)
            let active = hold.releasedAt == nil && (hold.expiresAt.map { $0 > now } ?? true)
            guard active, hold.cameras.contains(body.camera), hold.footageFrom <= body.from, hold.footageTo >= body.to else {
                throw IncidentError(.holdInvalid, message: "hold \(holdID) is not in force over \(body.camera) for the whole range", field: "body.hold")
            }
        } else {
            guard let legalReference, !legalReference.isEmpty, legalReference.count <= 200 else {
                throw IncidentError(
                    .exportBasisRequired, message: "an export needs an evidence hold that covers it (hold) or a legal reference of at most 200 characters",
                    field: "body.legal_reference")
            }
        }
        guard let camera = engine.index.cameras.first(where: { $0.id == body.camera }) else {
            throw IncidentError(.cameraUnknown, message: "no camera \(body.camera)", field: "body.camera")
        }
        func consultation(footage: Date) throws -> Consultation {
            Consultation(
                request: AccessRequest(
                    agency: agency, user: user, camera: body.camera, mode: .export, incident: body.justification?.incident, at: now, footageTime: footage,
                    prosecutorReference: body.prosecutorReference),
                justification: try body.justification.map { try $0.justification() }, recipient: body.recipient, source: AuditOrigin.current ?? "bus")
        }
        // The range's end is decided too (a grant's footage window, retention); a refusal there is audited like any.
        if case .deny = try await access.decide(try consultation(footage: body.to).request) {
            _ = try await access.start(try consultation(footage: body.to))
        }
        let ticket = try await access.start(try consultation(footage: body.from))
        defer { Task { [access] in await access.stopEventually(view: ticket.view, agency: agency, user: user) } }

        let segments = try await catalog.segments(camera: body.camera, from: body.from, to: body.to)
        guard !segments.isEmpty else {
            throw BusProtocol.ErrorBody(.footageUnavailable, message: "no footage of \(body.camera) is kept between \(body.from) and \(body.to)", field: "body.from")
        }
        let id = "E\(Int(now.timeIntervalSince1970 * 1000))-\(ticket.view.suffix(6))"
        let folder = configuration.exports.appendingPathComponent(id)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("original"), withIntermediateDirectories: true)
        // A package that could not be finished (a node gone, a full disk) is not left half made.
        var sealed = false
        defer { if !sealed { try? FileManager.default.removeItem(at: folder) } }
        var files: [EvidenceManifest.File] = []
        var spans: [EvidenceManifest.Segment] = []
        for segment in segments {
            let path = "original/\(URL(fileURLWithPath: segment.file).lastPathComponent)"
            if segment.relay == Self.relayName {
                try FileManager.default.copyItem(at: configuration.directory.appendingPathComponent(segment.file), to: folder.appendingPathComponent(path))
            } else {
                // On a relay node: fetched from it (a ticket signed with its secret), byte for byte.
                let (relay, file) = (relay, segment.file)
                let bytes = try await withCheckedThrowingContinuation { continuation in
                    Thread.detachNewThread { continuation.resume(with: Result { try relay.fetchFromNode(segment.relay, file: file) }) }
                }
                try bytes.write(to: folder.appendingPathComponent(path))
            }
            let (hash, bytes) = try EvidencePackage.sha256(of: folder.appendingPathComponent(path))
            files.append(EvidenceManifest.File(path: path, role: .original, bytes: bytes, sha256: hash))
            spans.append(EvidenceManifest.Segment(path: path, start: segment.start, end: segment.end))
        }
        var pictures: Int?
        if body.viewingCopy ?? true {
            // Short lines: a camera's sub-stream may be only 320 pixels wide.
            let watermark = ["VIGIL EVIDENCE COPY - not the original", "\(user ?? agency) (\(agency))", "incident \(ticket.incident), export \(id)",
                             "made \(now.formatted(.iso8601))"].joined(separator: "\n")
            // From the package's originals: a node's segments are here only.
            let inputs = zip(segments, spans).map { ViewingCopy.Input(url: folder.appendingPathComponent($1.path), start: $0.start) }
            let output = folder.appendingPathComponent("viewing-copy.mp4")
            let (from, to, masks) = (body.from, body.to, camera.privacyMasks)
            // Decoding and encoding take whole seconds: a thread of their own, off the cooperative pool.
            pictures = try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(with: Result { try ViewingCopy.make(inputs, from: from, to: to, masks: masks, watermark: watermark, output: output) })
                }
            }
            let (hash, bytes) = try EvidencePackage.sha256(of: output)
            files.append(EvidenceManifest.File(path: "viewing-copy.mp4", role: .viewingCopy, bytes: bytes, sha256: hash))
        }
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: signingKey)
        let manifest = EvidenceManifest(
            export: id, createdAt: now, serverKey: key.publicKey.rawRepresentation.base64EncodedString(), incident: ticket.incident, camera: camera.id,
            owner: camera.owner, footageFrom: body.from, footageTo: body.to, agency: agency, user: user ?? agency,
            reason: body.justification?.reason ?? "", justification: body.justification?.text ?? "", recipient: body.recipient, grant: ticket.grant,
            hold: body.hold, legalReference: legalReference, prosecutorReference: body.prosecutorReference, files: files, segments: spans)
        let manifestHash = try EvidencePackage.seal(manifest, in: folder, key: key)
        sealed = true
        try await audit.append(AuditRecord(
            action: "evidence.exported", at: now, agency: agency, user: user, cameras: [camera.id], footageFrom: AuditLog.timestamp(body.from),
            footageTo: AuditLog.timestamp(body.to), reason: body.justification?.reason, justification: body.justification?.text,
            recipient: body.recipient, incident: ticket.incident, grant: ticket.grant,
            details: [
                "export": id, "manifest_sha256": manifestHash, "files": "\(files.count)", "hold": body.hold.map(String.init) ?? "",
                "legal_reference": legalReference ?? "",
            ]))
        logger.info("evidence exported", metadata: ["export": "\(id)", "camera": "\(camera.id)", "files": "\(files.count)"])
        return FootageExportResult(
            export: id, path: folder.path, manifestSha256: manifestHash, serverKey: manifest.serverKey, files: files, viewingCopyPictures: pictures)
    }
}

extension FootageService {
    /// `footage.package`: a piece of a file of evidence package `body.export`, for the agency
    /// (and named user) that made it; the first piece of each file is audited as
    /// `evidence.fetched`. A package leaves the server only this way or on its host's disk.
    ///
    /// - Throws: `export_not_found` (no such package, or a file it does not list), `not_exporter`,
    ///   `export_invalid` (an offset past the file's end).
    public func package(_ body: FootagePackageBody, agency: String, user: String?, at now: Date = Date()) async throws -> FootagePackageResult {
        // A package's id is letters, digits and dashes (`E…-…`): nothing that leaves the exports folder.
        guard !body.export.isEmpty, body.export.count <= 64, body.export.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw IncidentError(.exportNotFound, message: "no evidence package \(body.export)", field: "body.export")
        }
        let folder = configuration.exports.appendingPathComponent(body.export)
        guard let manifest = EvidencePackage.manifest(in: folder) else {
            throw IncidentError(.exportNotFound, message: "no evidence package \(body.export)", field: "body.export")
        }
        guard manifest.agency == agency, manifest.user == (user ?? agency) else {
            throw IncidentError(.notExporter, message: "package \(body.export) was made by \(manifest.user) of \(manifest.agency): only they may fetch it", field: "body.export")
        }
        // Only what the package lists: a path is compared whole, never resolved.
        guard (manifest.files.map { $0.path } + [EvidencePackage.manifestName, EvidencePackage.signatureName]).contains(body.file) else {
            throw IncidentError(.exportNotFound, message: "package \(body.export) has no file \(body.file)", field: "body.file")
        }
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: folder.appendingPathComponent(body.file))
        } catch {
            throw IncidentError(.exportNotFound, message: "package \(body.export) has lost \(body.file)", field: "body.file")
        }
        defer { try? handle.close() }
        let size = Int(try handle.seekToEnd())
        let offset = body.offset ?? 0
        guard (0...size).contains(offset) else {
            throw IncidentError(.exportInvalid, message: "offset \(offset) is outside \(body.file) (\(size) bytes)", field: "body.offset")
        }
        try handle.seek(toOffset: UInt64(offset))
        let data = try handle.read(upToCount: FootagePackageResult.maximumPiece) ?? Data()
        if offset == 0 {
            try await audit.append(AuditRecord(
                action: "evidence.fetched", at: now, agency: agency, user: user, cameras: [manifest.camera],
                footageFrom: AuditLog.timestamp(manifest.footageFrom), footageTo: AuditLog.timestamp(manifest.footageTo), incident: manifest.incident,
                details: ["export": body.export, "file": body.file, "bytes": "\(size)"]))
        }
        return FootagePackageResult(export: body.export, file: body.file, offset: offset, size: size, data: data)
    }
}
