import Bus
import Console
import Foundation
import Geo
import Incidents
import Streams
import Testing
import VigilProtocol

/// Every stable error code the sources can produce is explained in `docs/protocol.md`: a client
/// author reads the codes there, so a code added without a line there fails this test.
@Suite("Error codes are documented")
struct ErrorCodesDocumentedTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every vocabulary of error codes: one `Code` type per boundary (the engine's, the incidents',
    /// the media path's, the bus's, the coordinator's replies, checkpoint verification), and the
    /// command line's (the executable's, read from its source).
    static func vocabularies() throws -> [String: [String]] {
        let commandLine = try String(contentsOf: root.appendingPathComponent("Sources/vigil/Commands/ClientOptions.swift"), encoding: .utf8)
        let block = try #require(commandLine.range(of: #"enum CommandFailureCode: String, ErrorCode \{[^}]*\}"#, options: .regularExpression))
        let cases = try NSRegularExpression(pattern: #"= "([a-z]+(?:_[a-z]+)+)""#)
        let text = String(commandLine[block])
        let commandCodes = cases.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { Range($0.range(at: 1), in: text).map { String(text[$0]) } }
        return [
            "GeoErrorCode": GeoErrorCode.allCases.map(\.rawValue),
            "IncidentErrorCode": IncidentErrorCode.allCases.map(\.rawValue),
            "MediaErrorCode": MediaErrorCode.allCases.map(\.rawValue),
            "BusProtocol.ErrorBody.Code": BusProtocol.ErrorBody.Code.allCases.map(\.rawValue),
            "ReplyCode": ReplyCode.allCases.map(\.rawValue),
            "CheckpointVerification.Code": CheckpointVerification.Code.allCases.map(\.rawValue),
            "ConsoleErrorCode": ConsoleErrorCode.allCases.map(\.rawValue),
            "CertificateErrorCode": CertificateErrorCode.allCases.map(\.rawValue),
            "CommandFailureCode": commandCodes,
        ]
    }

    @Test func everyCodeIsInTheProtocolDocument() throws {
        let vocabularies = try Self.vocabularies()
        #expect(vocabularies.values.map(\.count).reduce(0, +) > 130, "\(vocabularies.mapValues(\.count)): are the vocabularies still read right?")
        #expect(vocabularies["CommandFailureCode"]?.isEmpty == false)
        let document = try String(contentsOf: Self.root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
        for (vocabulary, codes) in vocabularies.sorted(by: { $0.key < $1.key }) {
            let missing = codes.filter { !document.contains("`\($0)`") }.sorted()
            #expect(missing.isEmpty, "\(vocabulary) codes not in docs/protocol.md: \(missing.joined(separator: ", "))")
        }
    }

    /// Codes are made from their vocabularies only: no error in the sources is made with a code
    /// written as a string, so none can escape the document.
    @Test func noCodeIsWrittenOutsideAVocabulary() throws {
        let pattern = try NSRegularExpression(pattern: #"(?:code: |passing: |fail\([0-9]+, |\.ffmpeg\(|fails\()"[a-z]+(?:_[a-z]+)*""#)
        var found: [String] = []
        let files = FileManager.default.enumerator(at: Self.root.appendingPathComponent("Sources"), includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        for file in files where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                found.append("\(file.lastPathComponent): \(Range(match.range, in: text).map { String(text[$0]) } ?? "")")
            }
        }
        #expect(found.isEmpty, "codes written as strings: \(found.joined(separator: "; "))")
    }

    /// Every operation a client may send has its row in the operations tables.
    @Test func everyOperationIsInTheProtocolDocument() throws {
        let document = try String(contentsOf: Self.root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
        let missing = ProtocolOperation.allCases.map(\.rawValue).filter { !document.contains("| `\($0)`") && !document.contains(", `\($0)`") }
        #expect(missing.isEmpty, "operations not in docs/protocol.md: \(missing.joined(separator: ", "))")
    }
}
