namespace Warden.Cli.Tests;

/// <summary>Walks the real command tree through <c>--help</c>: every command and subcommand prints usage and exits 0.</summary>
public class HelpTests
{
    private static List<string> Subcommands(string help)
    {
        var lines = help.Replace("\r", "", StringComparison.Ordinal).Split('\n');
        var start = Array.FindIndex(lines, l => l.TrimEnd() == "Commands:");
        if (start < 0)
        {
            return [];
        }

        var names = new List<string>();
        for (var i = start + 1; i < lines.Length && lines[i].StartsWith("  ", StringComparison.Ordinal); i++)
        {
            // "  check <path>  Report ..." -> "check"; wrapped description lines are indented further.
            if (!lines[i].StartsWith("   ", StringComparison.Ordinal))
            {
                names.Add(lines[i].Trim().Split(' ')[0]);
            }
        }

        return names;
    }

    [Fact]
    public async Task Help_EveryCommand_PrintsUsageAndExitsZero()
    {
        var visited = new List<string>();
        var queue = new Queue<string[]>([[]]);
        while (queue.Count > 0)
        {
            var path = queue.Dequeue();
            var result = await CliProcess.RunAsync(CliProcess.RepoRoot, [.. path, "--help"]);
            var name = "warden" + string.Concat(path.Select(p => " " + p));
            Assert.True(result.ExitCode == 0, $"{name} --help: {result}");
            Assert.Contains("Usage:", result.Stdout, StringComparison.Ordinal);
            Assert.Contains(name, result.Stdout, StringComparison.Ordinal);
            Assert.Contains("Description:", result.Stdout, StringComparison.Ordinal);
            visited.Add(name);
            foreach (var sub in Subcommands(result.Stdout))
            {
                queue.Enqueue([.. path, sub]);
            }
        }

        // The walk really descended: the policy verbs and the principal verbs are all there.
        foreach (var expected in new[] { "warden policy check", "warden policy test", "warden policy explain", "warden policy reload", "warden agents add", "warden serve" })
        {
            Assert.Contains(expected, visited);
        }
    }

    [Theory]
    [InlineData("-h")]
    [InlineData("-?")]
    public async Task Help_ShortForms_Work(string flag)
    {
        var result = await CliProcess.RunAsync(CliProcess.RepoRoot, "policy", "check", flag);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("warden policy check <path> [options]", result.Stdout, StringComparison.Ordinal);
    }
}
