import ArgumentParser
import VigilProtocol

@main
struct Vigil: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "Real-time incident coordination: incidents, the cameras around them, and the agencies that follow them.",
        version: VigilVersion.current,
        subcommands: [ServeCommand.self, RelayCommand.self, IncidentCommand.self, FollowCommand.self, CamerasCommand.self, GrantCommand.self, UserCommand.self, AgencyCommand.self, HoldCommand.self, WatchCommand.self, ExportCommand.self, ViewCommand.self, ConsoleCommand.self, AuditCommand.self, BenchCommand.self, FixturesCommand.self])
}
