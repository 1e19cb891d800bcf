import Foundation
import Testing
import VigilProtocol

/// Every stable error code the sources can produce is explained in `docs/protocol.md`: a client
/// author reads the codes there, so a code added without a line there fails this test.
@Suite("Error codes are documented")
struct ErrorCodesDocumentedTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The codes written as literals where errors are made: `code: "x"`, `.deny(code: "x"`, the
    /// decision function's `fail(N, "x"`, and `MediaError.ffmpeg("x"`.
    static func codesInSources() throws -> Set<String> {
        let pattern = try NSRegularExpression(pattern: #"(?:code: |fail\([0-9]+, |\.ffmpeg\()"([a-z]+(?:_[a-z]+)+)""#)
        var codes = Set<String>()
        let sources = root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        for file in files where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                if let range = Range(match.range(at: 1), in: text) { codes.insert(String(text[range])) }
            }
        }
        return codes
    }

    @Test func everyCodeIsInTheProtocolDocument() throws {
        let codes = try Self.codesInSources()
        #expect(codes.count > 100, "the scan found \(codes.count) codes: is the pattern still right?")
        let document = try String(contentsOf: Self.root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
        let missing = codes.filter { !document.contains("`\($0)`") }.sorted()
        #expect(missing.isEmpty, "error codes not in docs/protocol.md: \(missing.joined(separator: ", "))")
    }

    /// Every operation a client may send has its row in the operations tables.
    @Test func everyOperationIsInTheProtocolDocument() throws {
        let document = try String(contentsOf: Self.root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
        let missing = ProtocolOperation.allCases.map(\.rawValue).filter { !document.contains("| `\($0)`") && !document.contains(", `\($0)`") }
        #expect(missing.isEmpty, "operations not in docs/protocol.md: \(missing.joined(separator: ", "))")
    }
}
