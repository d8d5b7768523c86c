using System.Text.Json;

namespace Warden.Cli.Tests;

/// <summary>The shape of <c>warden policy explain --json</c>, which scripts and the dashboard read.</summary>
public class PolicyExplainTests
{
    private static Task<CliResult> Explain(params string[] extra) =>
        CliProcess.RunAsync(CliProcess.RepoRoot, ["policy", "explain", "--policy", "examples/policies/workplace", "--json", .. extra]);

    [Fact]
    public async Task ExplainJson_BulkDelete_ShapeAndTrace()
    {
        var result = await Explain("--agent", "inbox-helper", "--tool", "workplace__delete_mail", "--args", """{"ids":["1","2","3","4","5","6"]}""");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Stdout);
        var root = doc.RootElement;
        Assert.Equal(["effect", "rule", "reason", "policyVersion", "classes", "rules", "findings"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal("ask", root.GetProperty("effect").GetString());
        Assert.Equal("bulk-delete-needs-a-human", root.GetProperty("rule").GetString());
        Assert.Equal(JsonValueKind.String, root.GetProperty("reason").ValueKind);
        Assert.Matches("^[0-9a-f]{12}$", root.GetProperty("policyVersion").GetString());
        Assert.Equal(["mutating", "destructive"], root.GetProperty("classes").EnumerateArray().Select(c => c.GetString()));

        var rules = root.GetProperty("rules").EnumerateArray().ToList();
        Assert.Equal(7, rules.Count);
        foreach (var r in rules)
        {
            Assert.Equal(["id", "matched", "effect", "why"], r.EnumerateObject().Select(p => p.Name));
            Assert.Contains(r.GetProperty("effect").GetString(), new[] { "allow", "deny", "ask", "shadow" });
            Assert.False(string.IsNullOrEmpty(r.GetProperty("why").GetString()));
        }

        Assert.Equal(["bulk-delete-needs-a-human"], rules.Where(r => r.GetProperty("matched").GetBoolean()).Select(r => r.GetProperty("id").GetString()));
        var single = rules.Single(r => r.GetProperty("id").GetString() == "single-deletions");
        Assert.Contains("is false", single.GetProperty("why").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExplainJson_SecretInArguments_DataGuardDecidesAndListsTheFindingMasked()
    {
        var result = await Explain("--agent", "forum-helper", "--tool", "workplace__post_message", "--args", """{"topic":"t","text":"use QUtJQUVYQU1QTEVGQUtFMDAwNDI= for the export"}""");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Stdout);
        var root = doc.RootElement;
        Assert.Equal("deny", root.GetProperty("effect").GetString());
        Assert.Equal("data-guard:aws_access_key", root.GetProperty("rule").GetString());
        var finding = root.GetProperty("findings").EnumerateArray().Single();
        Assert.Equal("$.text", finding.GetProperty("location").GetString());
        Assert.Equal("base64", finding.GetProperty("encoding").GetString());
        Assert.Equal("block", finding.GetProperty("action").GetString());
        Assert.DoesNotContain("AKIAEXAMPLEFAKE00042", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExplainJson_LabelledAgent_PublicShareIsDenied()
    {
        var result = await Explain("--agent", "forum-helper", "--tool", "workplace__share_document", "--label", "confidential", "--args", """{"id":"doc-3","visibility":"public"}""");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Stdout);
        Assert.Equal("confidential-stays-inside", doc.RootElement.GetProperty("rule").GetString());
    }

    [Fact]
    public async Task ExplainJson_ConditionError_EffectError()
    {
        var result = await Explain("--agent", "inbox-helper", "--tool", "workplace__delete_mail");
        Assert.Equal(0, result.ExitCode);
        using var doc = JsonDocument.Parse(result.Stdout);
        Assert.Equal("error", doc.RootElement.GetProperty("effect").GetString());
        Assert.Contains("single-deletions", doc.RootElement.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExplainJson_LyingAnnotation_PolicyClassesShown()
    {
        var result = await Explain("--agent", "forum-helper", "--tool", "workplace__post_message", "--class", "read_only");
        Assert.Equal(0, result.ExitCode);
        using var doc = JsonDocument.Parse(result.Stdout);
        Assert.Equal("ask", doc.RootElement.GetProperty("effect").GetString());
        Assert.Equal(["mutating", "outbound"], doc.RootElement.GetProperty("classes").EnumerateArray().Select(c => c.GetString()));
    }

    [Fact]
    public async Task Explain_Table_NamesDecisionAndRules()
    {
        var result = await CliProcess.RunAsync(CliProcess.RepoRoot, "policy", "explain", "--policy", "examples/policies/workplace", "--agent", "inbox-helper", "--tool", "workplace__list_mail", "--class", "read_only");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("Decision: allow by reads-are-fine", result.Flat, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--tool", "no_separator", "--tool must be SERVER__TOOL")]
    [InlineData("--args", "[1]", "--args must be a JSON object")]
    [InlineData("--args", "{nope", "--args is not valid JSON")]
    [InlineData("--class", "readonly", "unknown class 'readonly'")]
    public async Task Explain_BadInput_FailsWithMessage(string option, string value, string message)
    {
        string[] args = ["--agent", "a", "--tool", "workplace__list_mail"];
        var i = Array.IndexOf(args, option);
        args = i >= 0 ? [.. args[..i], option, value, .. args[(i + 2)..]] : [.. args, option, value];
        var result = await Explain(args);

        // Meant to be exit 2 with one clean line (CliException); see Explain_BadInput_ExitsTwoWithoutStackTrace.
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explain_BadInput_ExitsTwoWithoutStackTrace()
    {
        var result = await Explain("--agent", "a", "--tool", "no_separator");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("warden: --tool must be SERVER__TOOL, not 'no_separator'", result.Stderr.Trim());
    }
}
