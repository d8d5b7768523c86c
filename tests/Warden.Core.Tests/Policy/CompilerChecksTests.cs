using Warden.Core.Policy;
using static Warden.Core.Tests.Policy.PolicyKit;

namespace Warden.Core.Tests.Policy;

public class CompilerChecksTests
{
    [Fact]
    public void Compile_RuleCoveredByEarlierStrongerRule_WarnsShadowed()
    {
        var w = Warnings("""
            rules:
              - id: no-deletes
                match: { tool: "delete_*" }
                effect: deny
              - id: allow-one-delete
                match: { server: mail, tool: delete_one }
                effect: allow
            """);
        var d = Assert.Single(w);
        Assert.Equal((5, 5), (d.Line, d.Column));
        Assert.Contains("rule 'allow-one-delete' is shadowed by rule 'no-deletes' (policy.yaml:2:5)", d.Message, StringComparison.Ordinal);
        Assert.NotNull(d.Hint);
    }

    [Theory]
    [InlineData("{ tool: a }", "deny", "{ tool: a }", "deny", true)]
    [InlineData("{ class: outbound }", "ask", "{ class: outbound, tool: x }", "allow", true)]
    [InlineData("{ }", "deny", "{ server: s }", "ask", true)]
    [InlineData("{ group: g }", "deny", "{ group: g, agent: a }", "ask", true)]
    // Not shadowed: the later rule is stronger, narrower in no way, or the earlier one has a condition.
    [InlineData("{ tool: a }", "allow", "{ tool: a }", "deny", false)]
    [InlineData("{ tool: a }", "deny", "{ tool: b }", "allow", false)]
    [InlineData("{ tool: \"a*\" }", "deny", "{ tool: \"ab*\" }", "allow", false)]
    [InlineData("{ class: outbound }", "deny", "{ tool: x }", "allow", false)]
    [InlineData("{ agent: a }", "deny", "{ }", "allow", false)]
    [InlineData("{ method: sampling }", "deny", "{ tool: x }", "allow", false)]
    public void Compile_ShadowCheck_Conservative(string matchA, string effectA, string matchB, string effectB, bool shadowed)
    {
        var w = Warnings($"""
            agents:
              a: {"{"} groups: [g] {"}"}
            rules:
              - id: first
                match: {matchA}
                effect: {effectA}
              - id: second
                match: {matchB}
                effect: {effectB}
            """);
        Assert.Equal(shadowed, w.Any(d => d.Message.Contains("shadowed", StringComparison.Ordinal)));
    }

    [Fact]
    public void Compile_EarlierRuleWithCondition_NeverShadows()
    {
        var w = Warnings("""
            rules:
              - id: first
                when: args.n > 1
                effect: deny
              - id: second
                effect: allow
            """);
        Assert.Empty(w);
    }

    [Fact]
    public void Compile_UnknownGroup_Warns()
    {
        var w = Warnings("""
            agents:
              bot: { groups: [assistants] }
            rules:
              - id: a
                match: { group: asistants }
                effect: allow
            """);
        Assert.Contains(w, d => d.Message.Contains("names group 'asistants', which no agent in the policy has", StringComparison.Ordinal));
    }

    [Fact]
    public void Compile_UnknownServer_ErrorWithHint()
    {
        var refs = new PolicyReferences { Servers = ["workplace", "forum"] };
        var errors = Errors("""
            classes:
              workplce: { x: [mutating] }
            rules:
              - id: a
                match: { server: workplac, tool: x }
                effect: allow
              - id: b
                match: { server: "work*", tool: y }
                effect: allow
            """, refs);
        Assert.Contains(errors, d => d.Message == "rule 'a' names unknown server 'workplac'" && d.Hint == "did you mean 'workplace'?" && d.Line == 4);
        Assert.Contains(errors, d => d.Message == "classes: unknown server 'workplce'" && d.Line == 2);
        Assert.Equal(2, errors.Count);
    }

    [Fact]
    public void Compile_ServersUnknown_NotChecked()
    {
        Compile("rules: [{ id: a, match: { server: anything }, effect: allow }]\n");
    }

    [Fact]
    public void Compile_ToolMatchingNoLiveTool_ErrorWithHint()
    {
        var refs = new PolicyReferences
        {
            Servers = ["workplace"],
            Tools = new Dictionary<string, IReadOnlyCollection<string>> { ["workplace"] = ["delete_mail", "send_mail", "list_mail"] },
        };
        var errors = Errors("""
            rules:
              - id: a
                match: { server: workplace, tool: delete_mails }
                effect: ask
              - id: b
                match: { server: workplace, tool: "*_mail" }
                effect: allow
              - id: c
                match: { tool: "post_*" }
                effect: ask
              - id: d
                match: { server: workplace, resource: "anything://**" }
                effect: allow
            """, refs);
        Assert.Contains(errors, d => d.Message == "rule 'a': tool pattern 'delete_mails' matches no live tool" && d.Hint == "did you mean 'delete_mail'?");
        Assert.Contains(errors, d => d.Message == "rule 'c': tool pattern 'post_*' matches no live tool");
        Assert.Equal(2, errors.Count);
    }
}
