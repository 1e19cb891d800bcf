import Foundation
import Testing

@testable import Coordinator

@Suite("Replay guard")
struct ReplayGuardTests {
    private let first = Data([0, 1]), second = Data([0, 2])

    @Test func refusesAnIdUsedAgainOnTheSameConnectionOnly() {
        let guardian = ReplayGuard()
        #expect(guardian.firstUse(of: "req-1", on: first))
        #expect(!guardian.firstUse(of: "req-1", on: first))
        #expect(guardian.firstUse(of: "req-1", on: second), "another connection may use the same id")
        #expect(guardian.firstUse(of: "req-2", on: first))
    }

    @Test func remembersABoundedNumberOfIdsPerConnection() {
        let guardian = ReplayGuard(idsPerConnection: 3, connections: 10)
        for number in 1...4 { #expect(guardian.firstUse(of: "req-\(number)", on: first)) }
        // req-1 was pushed out by req-4; req-2 to req-4 are still known.
        #expect(guardian.firstUse(of: "req-1", on: first))
        #expect(!guardian.firstUse(of: "req-4", on: first))
    }

    @Test func remembersABoundedNumberOfConnections() {
        let guardian = ReplayGuard(idsPerConnection: 8, connections: 2)
        #expect(guardian.firstUse(of: "req-1", on: first))
        #expect(guardian.firstUse(of: "req-1", on: second))
        #expect(guardian.firstUse(of: "req-1", on: Data([0, 3])))
        // The oldest connection was forgotten; the newer two are still known.
        #expect(guardian.firstUse(of: "req-1", on: first))
        #expect(!guardian.firstUse(of: "req-1", on: Data([0, 3])))
    }
}
