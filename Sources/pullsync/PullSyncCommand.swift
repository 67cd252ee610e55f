import ArgumentParser
import Foundation
import Logging

@main
struct PullSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pullsync",
        abstract: "Server-to-server pull sync of ad-tech partner user IDs.",
        subcommands: [
            CheckCommand.self, ExplainCommand.self, TryCommand.self, ServeCommand.self, BackfillCommand.self,
            DemoCommand.self,
        ]
    )

    static func main() async {
        // The tool's logs go to standard error; the library never bootstraps logging itself.
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Writes `line` to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
