import RegistryFixtures

/// A seeded generator (the fixtures' SplitMix64), so that a failing random test can be run again identically.
public typealias TestRandom = SeededRandom
