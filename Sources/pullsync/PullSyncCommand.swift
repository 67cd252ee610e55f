import ArgumentParser

@main
struct PullSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pullsync",
        abstract: "Server-to-server pull sync of ad-tech partner user IDs.",
        subcommands: [CheckCommand.self, ExplainCommand.self, TryCommand.self]
    )
}
