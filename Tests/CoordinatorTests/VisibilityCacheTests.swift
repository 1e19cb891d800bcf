import Testing
@testable import Coordinator

/// The cache of what agencies may see: no entry outlives what it was read from.
@Suite("Visibility cache")
struct VisibilityCacheTests {
    @Test func aReadingStartedBeforeAForgettingIsNotStored() {
        let cache = VisibilityCache()
        let before = cache.generation
        cache.forgetAll()  // a grant revoked while the reading was under way
        cache.store(["pz-5339": ["c1"]], incident: 7, readIn: before)
        #expect(cache.visible(incident: 7, agency: "pz-5339") == nil, "a stale reading would show a revoked camera")
        cache.store(["pz-5339": []], incident: 7, readIn: cache.generation)
        #expect(cache.visible(incident: 7, agency: "pz-5339") == [])
    }

    @Test func forgettingAnIncidentKeepsTheOthers() {
        let cache = VisibilityCache()
        cache.store(["pz-5339": ["c1"], "siamu": []], incident: 7, readIn: cache.generation)
        cache.store(["pz-5339": ["c2"]], incident: 8, readIn: cache.generation)
        cache.forget(incident: 7)
        #expect(cache.visible(incident: 7, agency: "pz-5339") == nil && cache.visible(incident: 7, agency: "siamu") == nil)
        #expect(cache.visible(incident: 8, agency: "pz-5339") == ["c2"])
        cache.forgetAll()
        #expect(cache.visible(incident: 8, agency: "pz-5339") == nil)
    }
}
