import Foundation
import Incidents

/// The body of `footage.export`: an evidence package of one camera's footage over a range, for
/// an incident (the justification's), by a named user, with an evidence hold that covers it
/// or a legal reference.
public struct FootageExportBody: Sendable, Codable {
    public var camera: String
    public var from: Date
    public var to: Date
    public var justification: WireJustification?
    /// Who receives the package (a prosecutor, a court).
    public var recipient: String?
    /// The evidence hold that covers the camera over the whole range.
    public var hold: Int64?
    /// Without a hold: the legal reference the export is made under.
    public var legalReference: String?
    public var prosecutorReference: String?
    /// Whether to make the masked, watermarked viewing copy (default true).
    public var viewingCopy: Bool?

    public init(
        camera: String, from: Date, to: Date, justification: WireJustification?, recipient: String? = nil, hold: Int64? = nil,
        legalReference: String? = nil, prosecutorReference: String? = nil, viewingCopy: Bool? = nil
    ) {
        (self.camera, self.from, self.to, self.justification, self.recipient) = (camera, from, to, justification, recipient)
        (self.hold, self.legalReference, self.prosecutorReference, self.viewingCopy) = (hold, legalReference, prosecutorReference, viewingCopy)
    }

    /// The longest range one export covers.
    public static let maximumSeconds: TimeInterval = 86_400
}

/// The reply to `footage.export`: where the server wrote the package, and what it holds.
public struct FootageExportResult: Sendable, Codable {
    public var export: String
    /// The package's folder on the server's host (under its data folder's `exports/`).
    public var path: String
    public var manifestSha256: String
    public var serverKey: String
    public var files: [EvidenceManifest.File]
    /// Pictures in the viewing copy, when one was made.
    public var viewingCopyPictures: Int?

    public init(export: String, path: String, manifestSha256: String, serverKey: String, files: [EvidenceManifest.File], viewingCopyPictures: Int?) {
        (self.export, self.path, self.manifestSha256, self.serverKey, self.files, self.viewingCopyPictures) = (
            export, path, manifestSha256, serverKey, files, viewingCopyPictures
        )
    }
}

/// The body of `incident.head-passed`: a march's cameras (of one section, or all) with the
/// moment its head passed each, from the march's journal.
public struct HeadPassedBody: Sendable, Codable {
    public var incident: Int64
    /// `ahead`, `occupied`, `behind`, `side-street`, `arrival`; nil: every section.
    public var section: String?

    public init(incident: Int64, section: String? = nil) {
        self.incident = incident
        self.section = section
    }
}

/// The reply to `incident.head-passed`.
public struct HeadPassedResult: Sendable, Codable {
    public var incident: Int64
    public var cameras: [HeadPassage]

    public init(incident: Int64, cameras: [HeadPassage]) {
        self.incident = incident
        self.cameras = cameras
    }
}

/// The body of `footage.package`: a piece of one file of an evidence package, from `offset`,
/// for the agency (and named user) that made the export. A client on another host fetches the
/// package file by file: the manifest (`manifest.json`), its signature (`manifest.sig`), then
/// every file the manifest lists.
public struct FootagePackageBody: Sendable, Codable {
    public var export: String
    /// `manifest.json`, `manifest.sig`, or a path the manifest lists (`original/…`, `viewing-copy.mp4`).
    public var file: String
    public var offset: Int?

    public init(export: String, file: String, offset: Int? = nil) {
        (self.export, self.file, self.offset) = (export, file, offset)
    }
}

/// The reply to `footage.package`: up to ``maximumPiece`` bytes of the file from `offset`
/// (base64 on the wire), and the file's whole size; the file is complete when `offset` plus
/// the bytes reaches `size`.
public struct FootagePackageResult: Sendable, Codable {
    public static let maximumPiece = 1 << 20

    public var export: String
    public var file: String
    public var offset: Int
    public var size: Int
    public var data: Data

    public init(export: String, file: String, offset: Int, size: Int, data: Data) {
        (self.export, self.file, self.offset, self.size, self.data) = (export, file, offset, size, data)
    }
}
