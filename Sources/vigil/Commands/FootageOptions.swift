import ArgumentParser

/// What `vigil serve` and `vigil relay` record: how much footage they keep, in segments of how long.
struct FootageOptions: ParsableArguments {
    @Option(help: "The most footage kept, in GiB: beyond it the oldest footage no evidence hold covers is deleted first.")
    var footageBudget = 50.0

    @Option(help: "Seconds of footage per recorded segment (cut at the next keyframe).")
    var segmentSeconds = 6.0

    @Flag(help: "Record nothing, whatever the grants allow.")
    var noRecording = false

    /// The budget in bytes, or nil when nothing is recorded.
    var budgetBytes: Int? { noRecording ? nil : Int(footageBudget * 1_073_741_824) }

    func validate() throws {
        guard footageBudget > 0, footageBudget.isFinite, footageBudget <= 1_000_000 else {
            throw ValidationError("--footage-budget must be more than 0 and at most 1000000 GiB")
        }
        guard segmentSeconds >= 1, segmentSeconds <= 60 else { throw ValidationError("--segment-seconds must be 1 to 60") }
    }
}
