/// The schema, as an append-only list of migrations applied in order and recorded in
/// `PRAGMA user_version`. A migration that has shipped is never edited: add a new one.
enum Migrations {
    static let all: [String] = [
        // 1: registry, agencies, incidents with their camera selection and journal.
        """
        CREATE TABLE owners (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            country TEXT NOT NULL,
            regime TEXT NOT NULL,
            retention_days INTEGER NOT NULL CHECK (retention_days > 0)
        );
        CREATE TABLE agencies (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            region TEXT NOT NULL,
            public_key TEXT UNIQUE
        );
        CREATE TABLE cameras (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL REFERENCES owners(id),
            kind TEXT NOT NULL,
            place_type TEXT NOT NULL,
            lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
            lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
            heading_deg REAL,
            fov_deg REAL,
            range_m REAL NOT NULL,
            stream TEXT NOT NULL,
            confidentiality TEXT NOT NULL CHECK (confidentiality IN ('public', 'confidential')),
            tags TEXT NOT NULL DEFAULT '[]'
        );
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            title TEXT,
            exercise INTEGER NOT NULL DEFAULT 0,
            lat REAL NOT NULL,
            lon REAL NOT NULL,
            radius_m REAL NOT NULL,
            lead_agency TEXT NOT NULL REFERENCES agencies(id),
            opened_at TEXT NOT NULL,
            closed_at TEXT,
            sequence INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE incident_cameras (
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            camera_id TEXT NOT NULL REFERENCES cameras(id),
            distance_m REAL NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (incident_id, camera_id)
        );
        CREATE TABLE incident_journal (
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            sequence INTEGER NOT NULL,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            change TEXT NOT NULL,
            PRIMARY KEY (incident_id, sequence)
        );
        """,
        // 2: marches: the declared route, window settings and position (JSON); each selected camera's section.
        """
        ALTER TABLE incidents ADD COLUMN march TEXT;
        ALTER TABLE incident_cameras ADD COLUMN section TEXT;
        ALTER TABLE incident_cameras ADD COLUMN along_m REAL;
        """,
        // 3: incidents defined by a perimeter (a GeoJSON Polygon or MultiPolygon) rather than a radius.
        """
        ALTER TABLE incidents ADD COLUMN area TEXT;
        """,
        // 4: the append-only, hash-chained audit log. `entry` is the canonical JSON that is hashed;
        // the other columns repeat some of its members for queries, and verification checks them.
        """
        CREATE TABLE audit_log (
            sequence INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            agency TEXT,
            incident_id INTEGER,
            entry TEXT NOT NULL,
            previous_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_log_at ON audit_log(at);
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        """,
        // 5: named users, and the owners' sharing grants (scope and condition as JSON).
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            agency TEXT NOT NULL REFERENCES agencies(id),
            name TEXT NOT NULL,
            badge TEXT NOT NULL,
            roles TEXT NOT NULL DEFAULT '[]',
            clearance_expires TEXT
        );
        CREATE TABLE grants (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL REFERENCES owners(id),
            agency TEXT NOT NULL REFERENCES agencies(id),
            definition TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            revoked_at TEXT,
            revoked_by TEXT
        );
        CREATE INDEX grants_owner_agency ON grants(owner, agency);
        """,
        // 6: incident details (CAP qualifiers, participants, commander, external references, as
        // JSON) and the parent incident, a column of its own so that children can be found.
        """
        ALTER TABLE incidents ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE incidents ADD COLUMN parent_id INTEGER REFERENCES incidents(id);
        CREATE INDEX incidents_parent ON incidents(parent_id);
        """,
        // 7: a named user's own CURVE key, so that the bus knows who (not only which agency) asks.
        """
        ALTER TABLE users ADD COLUMN public_key TEXT;
        CREATE UNIQUE INDEX users_public_key ON users(public_key) WHERE public_key IS NOT NULL;
        """,
        // 8: consultations (views and exports with their justification), evidence holds with the
        // cameras they cover, and the preservation requests sent to owners (numbered per owner channel).
        """
        CREATE TABLE views (
            id TEXT PRIMARY KEY,
            agency TEXT NOT NULL,
            user TEXT NOT NULL,
            camera_id TEXT NOT NULL REFERENCES cameras(id),
            mode TEXT NOT NULL,
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            grant_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            justification TEXT NOT NULL,
            started_at TEXT NOT NULL,
            stopped_at TEXT
        );
        CREATE TABLE evidence_holds (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            incident_id INTEGER NOT NULL REFERENCES incidents(id),
            footage_from TEXT NOT NULL,
            footage_to TEXT NOT NULL,
            legal_reference TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            requested_user TEXT,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            released_at TEXT,
            released_by TEXT
        );
        CREATE TABLE hold_cameras (
            hold_id INTEGER NOT NULL REFERENCES evidence_holds(id),
            camera_id TEXT NOT NULL REFERENCES cameras(id),
            PRIMARY KEY (hold_id, camera_id)
        );
        CREATE INDEX hold_cameras_camera ON hold_cameras(camera_id);
        CREATE TABLE preservation_requests (
            owner TEXT NOT NULL REFERENCES owners(id),
            sequence INTEGER NOT NULL,
            hold_id INTEGER NOT NULL REFERENCES evidence_holds(id),
            cameras TEXT NOT NULL,
            deadline TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (owner, sequence)
        );
        """,
        // 9: cameras' permanent privacy masks (JSON polygons in picture fractions); when a grant's
        // expiry and a hold's expiry were recorded in the audit log.
        """
        ALTER TABLE cameras ADD COLUMN privacy_masks TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE grants ADD COLUMN expiry_audited_at TEXT;
        ALTER TABLE evidence_holds ADD COLUMN expiry_audited_at TEXT;
        """,
        // 10: what grants' incident limits need (the incident's extent, the named user who opened
        // it), and the notices published on owners' channels besides preservation requests.
        """
        ALTER TABLE incidents ADD COLUMN opened_by_user TEXT;
        ALTER TABLE incidents ADD COLUMN extent_radius_m REAL;
        ALTER TABLE incidents ADD COLUMN extent_area_m2 REAL;
        CREATE TABLE owner_notices (
            owner TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            type TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (owner, sequence)
        );
        """,
        // 11: withdrawn users (suspended, removed) and retired cameras stay as rows, for the
        // audit log that names them.
        """
        ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
        ALTER TABLE cameras ADD COLUMN retired_at TEXT;
        """,
        // 12: the signed checkpoints of the audit chain the server has published (its own copy;
        // auditors and owners keep theirs, which is what makes them evidence).
        """
        CREATE TABLE audit_checkpoints (
            sequence INTEGER NOT NULL,
            at TEXT NOT NULL,
            checkpoint TEXT NOT NULL
        );
        """,
        // 13: recorded footage: every segment file a relay wrote (MPEG-TS from a keyframe, with its
        // keyframes' times as JSON seconds after its start), kept as a row after its deletion;
        // `removed_at`: when the relay holding the file confirmed it gone.
        """
        CREATE TABLE footage_segments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            camera_id TEXT NOT NULL REFERENCES cameras(id),
            relay TEXT NOT NULL,
            file TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            keyframes TEXT NOT NULL,
            incidents TEXT NOT NULL,
            deleted_at TEXT,
            deletion_reason TEXT,
            removed_at TEXT
        );
        CREATE UNIQUE INDEX footage_segments_file ON footage_segments(relay, file);
        CREATE INDEX footage_segments_camera ON footage_segments(camera_id, started_at);
        CREATE INDEX footage_segments_kept ON footage_segments(relay, started_at) WHERE deleted_at IS NULL;
        """,
    ]

    static func apply(to connection: SQLiteConnection) throws {
        let current = Int(try connection.userVersion)
        guard current <= all.count else {
            throw SQLiteError(code: 0, message: "database schema \(current) is newer than this vigil (\(all.count)); upgrade vigil", sql: nil)
        }
        for (offset, migration) in all.enumerated().dropFirst(current) {
            try connection.transaction {
                try connection.execute(migration)
                try connection.execute("PRAGMA user_version = \(offset + 1)")
            }
        }
    }
}
