import Foundation

/// How long an owner's footage exists and who may read it when (brief requirement 8).
///
/// The owner's declared retention is capped by its regime's legal maximum: Belgium keeps
/// footage one month at public places, three months at designated places (stations), and
/// police cameras twelve months, readable only with a prosecutor's decision after the first
/// month; France (internal-security code) at most one month.
public struct RetentionPolicy: Sendable, Equatable {
    public static let day: TimeInterval = 86_400

    public var retentionDays: Int
    /// After this many days, footage is readable only with a prosecutor's decision reference.
    public var judicialOnlyAfterDays: Int?

    public init(regime: String, declaredDays: Int) {
        let maximum: Int
        switch regime {
        case "police":
            maximum = 365
            judicialOnlyAfterDays = 30
        case "designated-place":
            maximum = 90
        default:
            // Public places in Belgium, fr-csi in France, and any regime not known: one month.
            maximum = 30
        }
        retentionDays = max(1, min(declaredDays, maximum))
    }

    /// The moment footage recorded at `footage` is overwritten.
    public func deletion(of footage: Date) -> Date {
        footage.addingTimeInterval(Double(retentionDays) * Self.day)
    }

    /// Whether footage recorded at `footage` needs a prosecutor's decision to be read at `now`.
    public func needsProsecutor(footage: Date, at now: Date) -> Bool {
        judicialOnlyAfterDays.map { now.timeIntervalSince(footage) > Double($0) * Self.day } ?? false
    }
}
