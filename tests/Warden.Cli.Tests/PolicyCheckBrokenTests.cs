using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace Warden.Cli.Tests;

/// <summary><c>warden policy check</c> on every file in tests/policies/broken: non-zero exit, the expected message at file:line:column.</summary>
public class PolicyCheckBrokenTests
{
    private static readonly string Folder = CliProcess.InRepo("tests", "policies", "broken");

    private sealed record Expected(string File, int Line, int? Column, string Message);

    private static Dictionary<string, Expected> Load()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Path.Combine(Folder, "expected.yaml"))));
        var root = (YamlMappingNode)stream.Documents[0].RootNode;
        return root.Children.ToDictionary(
            kv => ((YamlScalarNode)kv.Key).Value!,
            kv =>
            {
                var m = (YamlMappingNode)kv.Value;
                string? Get(string key) => m.Children.TryGetValue(new YamlScalarNode(key), out var v) ? ((YamlScalarNode)v).Value : null;
                return new Expected(((YamlScalarNode)kv.Key).Value!, int.Parse(Get("line")!), Get("column") is { } c ? int.Parse(c) : null, Get("message")!);
            });
    }

    public static TheoryData<string> Files() => [.. Load().Keys.Order(StringComparer.Ordinal)];

    [Fact]
    public void ExpectedYaml_ListsEveryBrokenFile()
    {
        var files = Directory.EnumerateFiles(Folder, "*.yaml").Select(Path.GetFileName).Where(f => f != "expected.yaml").Order(StringComparer.Ordinal);
        Assert.Equal(files, Load().Keys.Order(StringComparer.Ordinal));
        Assert.True(Load().Count >= 10);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public async Task PolicyCheck_BrokenFile_FailsWithMessageAtFileLineColumn(string file)
    {
        var expected = Load()[file];
        var result = await CliProcess.RunAsync(Folder, "policy", "check", file);
        Assert.True(result.ExitCode == 1, result.ToString());
        var where = expected.Column is { } c ? $"{file}:{expected.Line}:{c}: error: " : $"{file}:{expected.Line}:";
        var flat = result.Flat;
        var at = flat.IndexOf(where, StringComparison.Ordinal);
        Assert.True(at >= 0, $"'{where}' not in output:{Environment.NewLine}{result}");
        Assert.Contains(expected.Message, flat[at..], StringComparison.Ordinal);
        Assert.DoesNotContain("ok: policy", flat, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public async Task PolicyCheckJson_BrokenFile_ProblemWithPosition(string file)
    {
        var expected = Load()[file];
        var result = await CliProcess.RunAsync(Folder, "policy", "check", file, "--json");
        Assert.Equal(1, result.ExitCode);
        using var doc = JsonDocument.Parse(result.Stdout);
        Assert.False(doc.RootElement.GetProperty("ok").GetBoolean());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("version").ValueKind);
        var problems = doc.RootElement.GetProperty("problems").EnumerateArray().ToList();
        var parts = expected.Message.Split(" (hint: ");
        var message = parts[0];
        var hint = parts.Length > 1 ? parts[1][..^1] : null;
        Assert.True(
            problems.Exists(p =>
                p.GetProperty("file").GetString() == file
                && p.GetProperty("line").GetInt32() == expected.Line
                && (expected.Column is null || p.GetProperty("column").GetInt32() == expected.Column)
                && p.GetProperty("severity").GetString() == "error"
                && p.GetProperty("message").GetString()!.Contains(message, StringComparison.Ordinal)
                && (hint is null || p.GetProperty("hint").GetString() == hint)),
            result.Stdout);
    }

    [Fact]
    public async Task PolicyCheck_Folder_ReportsEveryBrokenFile()
    {
        // The folder as one policy: every file's problems are reported in one run, not just the first.
        var result = await CliProcess.RunAsync(Folder, "policy", "check", ".", "--json");
        Assert.Equal(1, result.ExitCode);
        using var doc = JsonDocument.Parse(result.Stdout);
        var files = doc.RootElement.GetProperty("problems").EnumerateArray().Select(p => Path.GetFileName(p.GetProperty("file").GetString()!)).ToHashSet();
        foreach (var f in Load().Keys)
        {
            Assert.Contains(f, files);
        }
    }

    [Fact]
    public async Task PolicyCheck_MissingPath_FailsClearly()
    {
        var result = await CliProcess.RunAsync(Folder, "policy", "check", "no-such-policy.yaml");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("no-such-policy.yaml", result.Flat, StringComparison.Ordinal);
    }
}
