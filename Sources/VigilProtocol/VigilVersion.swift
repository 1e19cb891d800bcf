/// The version of this Vigil (`vigil --version`, the `vigil_build_info` metric, `server.json`'s
/// peers). It changes with each release; the bus protocol's own version is `BusProtocol.version`.
public enum VigilVersion {
    public static let current = "0.13.0"
}
