import ArgumentParser

/// Refuses a TCP port option outside 0 (any free port) to 65535, naming the option.
func validatePorts(_ ports: KeyValuePairs<String, Int>) throws {
    for (name, port) in ports where !(0...65535).contains(port) {
        throw ValidationError("\(name) must be 0 to 65535, got \(port)")
    }
}
