using System.Text.Json;

namespace Warden.Cli.Tests;

/// <summary><c>warden policy test</c> and <c>policy check</c> over the shipped examples, and a failing suite.</summary>
public class PolicyTestCommandTests
{
    private static List<string> ExampleNames() =>
        [.. Directory.EnumerateDirectories(CliProcess.InRepo("examples", "policies")).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal)];

    public static TheoryData<string> Examples() => [.. ExampleNames()];

    [Fact]
    public void Examples_AllSixPlusWorkplace_Present()
    {
        Assert.Superset(new HashSet<string> { "workplace", "forum", "inbox", "mail-calendar", "payments", "chat-links", "analyst" }, ExampleNames().ToHashSet());
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public async Task PolicyTest_Example_AllCasesPass(string name)
    {
        var result = await CliProcess.RunAsync(CliProcess.RepoRoot, "policy", "test", $"examples/policies/{name}", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Stdout);
        Assert.Equal(0, doc.RootElement.GetProperty("failed").GetInt32());
        Assert.True(doc.RootElement.GetProperty("total").GetInt32() >= 5);

        // Every example covers an allow, a refusal (deny or ask) and an error path.
        var details = doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("detail").GetString()!).ToList();
        Assert.Contains(details, d => d.StartsWith("allow by", StringComparison.Ordinal));
        Assert.Contains(details, d => d.StartsWith("deny by", StringComparison.Ordinal) || d.StartsWith("ask by", StringComparison.Ordinal));
        Assert.Contains(details, d => d.StartsWith("error by", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public async Task PolicyCheck_Example_Ok(string name)
    {
        var result = await CliProcess.RunAsync(CliProcess.RepoRoot, "policy", "check", $"examples/policies/{name}");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("ok: policy", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PolicyTest_TableOutput_PassCountsPrinted()
    {
        var result = await CliProcess.RunAsync(CliProcess.RepoRoot, "policy", "test", "examples/policies/forum");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("7 passed, 0 failed", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PolicyTest_FailingCase_ExitsOneAndSaysWhy()
    {
        using var dir = new TempDir();
        dir.Write("policy.yaml", """
            default: deny
            rules:
              - id: reads
                match: { class: read_only }
                effect: allow
            """);
        dir.Write("policy.test.yaml", """
            policy: .
            cases:
              - name: reading passes
                tool: mail__list
                classes: [read_only]
                expect: { effect: allow, rule: reads }
              - name: sending wrongly expected to pass
                tool: mail__send
                expect: { effect: allow }
            """);
        var result = await CliProcess.RunAsync(dir.Path, "policy", "test", ".", "--json");
        Assert.Equal(1, result.ExitCode);
        using var doc = JsonDocument.Parse(result.Stdout);
        Assert.Equal(2, doc.RootElement.GetProperty("total").GetInt32());
        Assert.Equal(1, doc.RootElement.GetProperty("failed").GetInt32());
        var failed = doc.RootElement.GetProperty("cases").EnumerateArray().Single(c => !c.GetProperty("passed").GetBoolean());
        Assert.Equal("sending wrongly expected to pass", failed.GetProperty("name").GetString());
        Assert.StartsWith("expected allow, got deny by default", failed.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("policy.test.yaml:7", failed.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var table = await CliProcess.RunAsync(dir.Path, "policy", "test", "policy.test.yaml");
        Assert.Equal(1, table.ExitCode);
        Assert.Contains("1 passed, 1 failed", table.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PolicyTest_BrokenTestFile_ExitsOneWithPosition()
    {
        using var dir = new TempDir();
        dir.Write("policy.yaml", "rules: []\n");
        dir.Write("policy.test.yaml", "policy: .\ncases:\n  - tool: mail__x\n    expct: { effect: deny }\n");
        var result = await CliProcess.RunAsync(dir.Path, "policy", "test", ".");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("policy.test.yaml:4:5: error: unknown field 'expct'", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PolicyTest_BrokenPolicy_ExitsOneWithPolicyDiagnostics()
    {
        using var dir = new TempDir();
        dir.Write("policy.yaml", "rules:\n  - id: a\n    effect: permit\n");
        dir.Write("policy.test.yaml", "policy: .\ncases:\n  - tool: mail__x\n    expect: { effect: deny }\n");
        var result = await CliProcess.RunAsync(dir.Path, "policy", "test", ".");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("policy.yaml:3:13: error: rule 'a': effect must be", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PolicyTest_NoTestFiles_FailsWithMessage()
    {
        using var dir = new TempDir();
        dir.Write("policy.yaml", "rules: []\n");
        var result = await CliProcess.RunAsync(dir.Path, "policy", "test", ".");

        // Meant to be exit 2 (CliException); see PolicyExplainTests.Explain_BadInput_ExitsTwoWithoutStackTrace.
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("no *.test.yaml files", result.Stderr, StringComparison.Ordinal);
    }
}

/// <summary>A temporary folder, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "warden-cli-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Write(string name, string text) => File.WriteAllText(System.IO.Path.Combine(Path, name), text);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
