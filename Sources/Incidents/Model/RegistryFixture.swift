import Foundation

/// An agency that takes part in incidents and holds a CURVE key pair.
public struct Agency: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var kind: String
    public var region: String
}

/// A camera owner, with the legal regime and retention its cameras fall under.
public struct Owner: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var country: String
    public var regime: String
    public var retentionDays: Int
}

/// The agencies and owners of a deployment, as in `fixtures/agencies.json`.
public struct RegistryFixture: Sendable, Codable {
    public var agencies: [Agency]
    public var owners: [Owner]

    public static func read(contentsOf url: URL) throws -> RegistryFixture {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(RegistryFixture.self, from: Data(contentsOf: url))
    }
}
