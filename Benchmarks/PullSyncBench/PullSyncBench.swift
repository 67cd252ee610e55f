// The benchmarks behind BENCHMARKS.md, one subcommand per measure; `scripts/bench` runs them all.
// Every figure is a ratio to a baseline measured in the same run, or a count.
import ArgumentParser

@main
struct PullSyncBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "PullSyncBench",
        abstract: "pullsync's benchmarks: each prints a table, with its baseline from the same run.",
        subcommands: [
            EdgeCommand.self, FanOutCommand.self, HeadOfLineCommand.self,
            FairnessCommand.self,
        ]
    )
}
