import ArgumentParser
import Bus

/// Refuses a TCP port option outside 0 (any free port) to 65535, naming the option.
func validatePorts(_ ports: KeyValuePairs<String, Int>) throws {
    for (name, port) in ports where !(0...65535).contains(port) {
        throw ValidationError("\(name) must be 0 to 65535, got \(port)")
    }
}

extension HostAddress {
    /// `--host`: an IPv4 or IPv6 address; a name (or a typo) is refused before anything starts.
    static func argument(_ text: String) throws -> HostAddress {
        guard let address = HostAddress(text) else {
            throw ValidationError("--host \(text) is not an IPv4 or IPv6 address (names are not resolved: give the address to bind)")
        }
        return address
    }
}
