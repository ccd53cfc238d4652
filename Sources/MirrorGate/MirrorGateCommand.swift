import ArgumentParser

/// `mirrorgate`: a container-registry mirror gateway.
@main
struct MirrorGateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirrorgate",
        abstract: "A registry mirror gateway: ordered upstreams, verified content, one local cache.",
        subcommands: [ServeCommand.self, CheckCommand.self, GCCommand.self, StatusCommand.self, ReportCommand.self, WarmCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}

/// Options shared by the subcommands.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Path of the configuration file.")
    var config: String = "./gateway.yaml"
}
