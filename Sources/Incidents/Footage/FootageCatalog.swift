import Foundation

/// A segment of recorded footage as the coordinator knows it: which relay holds its file, its
/// wall-clock span, its keyframes, and the incidents it was recorded for.
public struct FootageSegment: Sendable, Codable, Equatable {
    public var id: Int64
    public var camera: String
    /// The relay that wrote it and holds its file (`coordinator`, or a relay node's name).
    public var relay: String
    /// The file's path under that relay's footage folder.
    public var file: String
    public var start: Date
    public var end: Date
    public var bytes: Int
    /// Each keyframe's time in seconds after ``start``.
    public var keyframes: [Double]
    public var incidents: [Int64]

    public init(id: Int64 = 0, camera: String, relay: String, file: String, start: Date, end: Date, bytes: Int, keyframes: [Double], incidents: [Int64]) {
        (self.id, self.camera, self.relay, self.file) = (id, camera, relay, file)
        (self.start, self.end, self.bytes, self.keyframes, self.incidents) = (start, end, bytes, keyframes, incidents)
    }
}

/// Footage deleted in one sweep: one camera's contiguous range on one relay, with its files.
public struct FootageDeletion: Sendable, Equatable {
    public enum Reason: String, Sendable {
        /// The owner's retention for the camera's regime has passed.
        case retention
        /// The relay's byte budget was reached: the oldest footage no hold covers went first.
        case diskBudget = "disk_budget"
    }

    public var camera: String
    public var relay: String
    public var from: Date
    public var to: Date
    public var files: [String]
    public var bytes: Int
    public var reason: Reason
}

/// Held footage a relay's budget cannot keep much longer: the owner is asked to preserve it on
/// its own recorder (published on the owner's channel as `footage.at-risk`).
public struct FootageAtRisk: Sendable, Codable, Equatable {
    public var owner: String
    public var sequence: Int64
    public var relay: String
    public var cameras: [String]
    public var footageFrom: Date
    public var footageTo: Date
    public var heldBytes: Int
    public var budgetBytes: Int
    public var at: Date
}

/// Where every recorded segment is, and the rules that delete them (brief requirements 8 and 9):
/// a segment goes when its owner's retention for the camera's regime has passed since its start
/// (so footage is never kept beyond the legal maximum), or when its relay's byte budget is
/// reached (oldest first), unless an evidence hold covers it. Deletions are audited, one entry
/// per camera and range, not per file; the rows stay, marked deleted, for the audit log that names them.
public final class FootageCatalog: Sendable {
    private let database: Database
    /// Segments further apart than this are separate ranges in the audit log. Consecutive
    /// segments of a recording touch (the next starts at the keyframe that ended the last); a
    /// kept segment between two deleted ones leaves a gap of its own length.
    static let rangeGap: TimeInterval = 1
    /// An owner is asked again about the same relay's held footage at risk after this long.
    static let atRiskRepeat: TimeInterval = 3_600

    public init(database: Database) {
        self.database = database
    }

    /// Records a closed segment; one its relay already reported (a node reports what it finds in
    /// its folder when it starts) is left as it is.
    @discardableResult
    public func add(_ segment: FootageSegment) async throws -> FootageSegment {
        try await database.run { db in
            try db.query(
                """
                INSERT INTO footage_segments (camera_id, relay, file, started_at, ended_at, bytes, keyframes, incidents)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (relay, file) DO NOTHING
                """,
                [.text(segment.camera), .text(segment.relay), .text(segment.file), .text(IncidentService.timestamp(segment.start)),
                 .text(IncidentService.timestamp(segment.end)), .integer(Int64(segment.bytes)), .text(Self.json(segment.keyframes)),
                 .text(Self.json(segment.incidents))])
            var stored = segment
            stored.id = try db.query("SELECT last_insert_rowid()").first!.integer(0)!
            return stored
        }
    }

    /// Every file `relay` was ever known to hold, by its path under the relay's folder, and
    /// whether it is still kept (true) or deleted.
    public func files(relay: String) async throws -> [String: Bool] {
        try await database.read { db in
            var files: [String: Bool] = [:]
            for row in try db.query("SELECT file, deleted_at FROM footage_segments WHERE relay = ?", [.text(relay)]) {
                files[try row.text("file")] = try row.optionalText("deleted_at") == nil
            }
            return files
        }
    }

    /// The files of `relay` that are deleted but that the relay has not yet confirmed removed.
    public func filesToRemove(relay: String, limit: Int = 1_000) async throws -> [String] {
        try await database.read { db in
            try db.query(
                "SELECT file FROM footage_segments WHERE relay = ? AND deleted_at IS NOT NULL AND removed_at IS NULL ORDER BY id LIMIT ?",
                [.text(relay), .integer(Int64(limit))]
            ).compactMap { $0.text(0) }
        }
    }

    /// `relay` removed these files (of deleted segments).
    public func removed(_ files: [String], relay: String, at now: Date = Date()) async throws {
        guard !files.isEmpty else { return }
        try await database.run { db in
            try db.transaction {
                for file in files {
                    try db.query(
                        "UPDATE footage_segments SET removed_at = ? WHERE relay = ? AND file = ? AND deleted_at IS NOT NULL AND removed_at IS NULL",
                        [.text(IncidentService.timestamp(now)), .text(relay), .text(file)])
                }
            }
        }
    }

    /// The kept segments of `camera` that overlap `from...to`, in time order.
    public func segments(camera: String, from: Date, to: Date) async throws -> [FootageSegment] {
        try await database.read { db in
            try db.query(
                """
                SELECT * FROM footage_segments
                WHERE camera_id = ? AND deleted_at IS NULL AND started_at <= ? AND ended_at >= ? ORDER BY started_at
                """, [.text(camera), .text(IncidentService.timestamp(to)), .text(IncidentService.timestamp(from))]
            ).map(Self.segment)
        }
    }

    /// What a playback from `moment` plays: the kept segment holding it (or the first one after
    /// it, within a segment's reach), and the ones after it.
    public func playback(camera: String, from moment: Date, limit: Int = 600) async throws -> [FootageSegment] {
        try await database.read { db in
            try db.query(
                """
                SELECT * FROM footage_segments WHERE camera_id = ? AND deleted_at IS NULL AND ended_at > ? ORDER BY started_at LIMIT ?
                """, [.text(camera), .text(IncidentService.timestamp(moment)), .integer(Int64(limit))]
            ).map(Self.segment)
        }
    }

    /// Every kept segment's bytes, and the part of them an active hold covers at `now`.
    public func bytes(at now: Date = Date()) async throws -> (kept: Int, held: Int) {
        try await database.read { db in
            let kept = Int(try db.query("SELECT COALESCE(SUM(bytes), 0) FROM footage_segments WHERE deleted_at IS NULL").first?.integer(0) ?? 0)
            let held = Int(try db.query(
                "SELECT COALESCE(SUM(s.bytes), 0) FROM footage_segments s WHERE s.deleted_at IS NULL AND \(Self.heldClause)",
                [.text(IncidentService.timestamp(now))]
            ).first?.integer(0) ?? 0)
            return (kept, held)
        }
    }

    /// Deletes (marks deleted, and audits) the segments whose retention has passed at `now` and
    /// that no active hold covers; returns the ranges, whose files the relays then remove.
    public func sweepRetention(at now: Date = Date()) async throws -> [FootageDeletion] {
        try await database.run { db in
            try db.transaction {
                let candidates = try db.query(
                    """
                    SELECT s.*, o.regime, o.retention_days FROM footage_segments s
                    JOIN cameras c ON c.id = s.camera_id JOIN owners o ON o.id = c.owner
                    WHERE s.deleted_at IS NULL AND NOT \(Self.heldClause) ORDER BY s.camera_id, s.started_at
                    """, [.text(IncidentService.timestamp(now))])
                var due: [FootageSegment] = []
                for row in candidates {
                    let retention = RetentionPolicy(regime: try row.text("regime"), declaredDays: Int(try row.integer("retention_days")))
                    let segment = try Self.segment(row)
                    if retention.deletion(of: segment.start) <= now { due.append(segment) }
                }
                return try Self.delete(due, reason: .retention, at: now, in: db)
            }
        }
    }

    /// Keeps `relay`'s footage within `budget` bytes: the oldest segments no hold covers are
    /// deleted first (audited). When held footage alone fills most of the budget, each owner
    /// concerned is asked to preserve it on its own recorder (returned, to publish).
    public func enforceBudget(relay: String, budget: Int, at now: Date = Date()) async throws -> (deleted: [FootageDeletion], atRisk: [FootageAtRisk]) {
        try await database.run { db in
            try db.transaction {
                let stamp = IncidentService.timestamp(now)
                var total = Int(try db.query(
                    "SELECT COALESCE(SUM(bytes), 0) FROM footage_segments WHERE relay = ? AND deleted_at IS NULL", [.text(relay)]
                ).first?.integer(0) ?? 0)
                var due: [FootageSegment] = []
                if total > budget {
                    let unheld = try db.query(
                        "SELECT s.* FROM footage_segments s WHERE s.relay = ?2 AND s.deleted_at IS NULL AND NOT \(Self.heldClause) ORDER BY s.started_at",
                        [.text(stamp), .text(relay)])
                    for row in unheld where total > budget {
                        let segment = try Self.segment(row)
                        due.append(segment)
                        total -= segment.bytes
                    }
                }
                let deleted = try Self.delete(due.sorted { ($0.camera, $0.start) < ($1.camera, $1.start) }, reason: .diskBudget, at: now, in: db)
                // Held footage over nine tenths of the budget: new footage would soon have no room.
                let held = try db.query(
                    """
                    SELECT c.owner, s.camera_id, MIN(s.started_at) AS first, MAX(s.ended_at) AS last, SUM(s.bytes) AS bytes
                    FROM footage_segments s JOIN cameras c ON c.id = s.camera_id
                    WHERE s.relay = ?2 AND s.deleted_at IS NULL AND \(Self.heldClause) GROUP BY c.owner, s.camera_id ORDER BY c.owner, s.camera_id
                    """, [.text(stamp), .text(relay)])
                let heldBytes = try held.reduce(0) { $0 + Int(try $1.integer("bytes")) }
                guard heldBytes * 10 > budget * 9 else { return (deleted, []) }
                var atRisk: [FootageAtRisk] = []
                for (owner, rows) in Dictionary(grouping: held, by: { $0.text(0) ?? "" }).sorted(by: { $0.key < $1.key }) {
                    let since = IncidentService.timestamp(now.addingTimeInterval(-Self.atRiskRepeat))
                    let recent = try db.query(
                        "SELECT body FROM owner_notices WHERE owner = ? AND type = 'footage.at-risk' AND created_at > ?", [.text(owner), .text(since)]
                    ).contains { (try? AccessService.decoder.decode(FootageAtRisk.self, from: Data(($0.text(0) ?? "").utf8)))?.relay == relay }
                    if recent { continue }
                    var notice = FootageAtRisk(
                        owner: owner, sequence: try OwnerChannel.nextSequence(for: owner, in: db), relay: relay,
                        cameras: rows.compactMap { $0.text(1) }, footageFrom: IncidentService.date(try rows.map { try $0.text("first") }.min()!),
                        footageTo: IncidentService.date(try rows.map { try $0.text("last") }.max()!),
                        heldBytes: try rows.reduce(0) { $0 + Int(try $1.integer("bytes")) }, budgetBytes: budget, at: now)
                    notice.sequence = try OwnerChannel.nextSequence(for: owner, in: db)
                    try db.query(
                        "INSERT INTO owner_notices (owner, sequence, type, body, created_at) VALUES (?, ?, 'footage.at-risk', ?, ?)",
                        [.text(owner), .integer(notice.sequence), .text(String(decoding: try AccessService.encoder.encode(notice), as: UTF8.self)), .text(stamp)])
                    try AuditLog.append(AuditRecord(
                        action: "preservation.requested", at: now, cameras: notice.cameras, footageFrom: AuditLog.timestamp(notice.footageFrom),
                        footageTo: AuditLog.timestamp(notice.footageTo), reason: "disk_budget", recipient: owner,
                        details: ["relay": relay, "held_bytes": "\(notice.heldBytes)", "budget_bytes": "\(budget)"]), in: db)
                    atRisk.append(notice)
                }
                return (deleted, atRisk)
            }
        }
    }

    /// An active hold (not released, not expired at `?1`) covers the segment `s`'s camera over part of its span.
    private static let heldClause = """
        EXISTS (SELECT 1 FROM hold_cameras hc JOIN evidence_holds h ON h.id = hc.hold_id
                WHERE hc.camera_id = s.camera_id AND h.released_at IS NULL AND (h.expires_at IS NULL OR h.expires_at > ?1)
                  AND h.footage_from <= s.ended_at AND h.footage_to >= s.started_at)
        """

    /// Marks `segments` (sorted by camera, then start) deleted and audits them, one entry per
    /// camera, relay and contiguous range.
    private static func delete(_ segments: [FootageSegment], reason: FootageDeletion.Reason, at now: Date, in db: SQLiteConnection) throws -> [FootageDeletion] {
        var ranges: [FootageDeletion] = []
        for segment in segments {
            try db.query(
                "UPDATE footage_segments SET deleted_at = ?, deletion_reason = ? WHERE id = ?",
                [.text(IncidentService.timestamp(now)), .text(reason.rawValue), .integer(segment.id)])
            if var last = ranges.last, last.camera == segment.camera, last.relay == segment.relay,
               segment.start.timeIntervalSince(last.to) <= rangeGap
            {
                last.to = max(last.to, segment.end)
                last.files.append(segment.file)
                last.bytes += segment.bytes
                ranges[ranges.count - 1] = last
            } else {
                ranges.append(FootageDeletion(
                    camera: segment.camera, relay: segment.relay, from: segment.start, to: segment.end, files: [segment.file], bytes: segment.bytes,
                    reason: reason))
            }
        }
        for range in ranges {
            try AuditLog.append(AuditRecord(
                action: "footage.deleted", at: now, cameras: [range.camera], footageFrom: AuditLog.timestamp(range.from),
                footageTo: AuditLog.timestamp(range.to), reason: range.reason.rawValue,
                details: ["relay": range.relay, "segments": "\(range.files.count)", "bytes": "\(range.bytes)"]), in: db)
        }
        return ranges
    }

    private static func segment(_ row: Row) throws -> FootageSegment {
        FootageSegment(
            id: try row.integer("id"), camera: try row.text("camera_id"), relay: try row.text("relay"), file: try row.text("file"),
            start: IncidentService.date(try row.text("started_at")), end: IncidentService.date(try row.text("ended_at")),
            bytes: Int(try row.integer("bytes")),
            keyframes: try JSONDecoder().decode([Double].self, from: Data(try row.text("keyframes").utf8)),
            incidents: try JSONDecoder().decode([Int64].self, from: Data(try row.text("incidents").utf8)))
    }

    private static func json<T: Encodable>(_ value: T) -> String {
        String(decoding: (try? JSONEncoder().encode(value)) ?? Data("[]".utf8), as: UTF8.self)
    }
}
