using Warden.Core.Policy;

namespace Warden.Core.Tests.Policy;

public class GlobTests
{
    [Theory]
    [InlineData("delete_mail", "delete_mail", true)]
    [InlineData("delete_mail", "delete_mails", false)]
    [InlineData("delete_*", "delete_mail", true)]
    [InlineData("delete_*", "delete_", true)]
    [InlineData("delete_*", "undelete_mail", false)]
    [InlineData("*_mail", "send_mail", true)]
    [InlineData("*", "anything", true)]
    [InlineData("*", "", true)]
    [InlineData("?ead_mail", "read_mail", true)]
    [InlineData("?ead_mail", "ead_mail", false)]
    [InlineData("a*b*c", "aXbYc", true)]
    [InlineData("a*b*c", "aXbY", false)]
    public void IsMatch_Names_MatchesWholeName(string pattern, string text, bool expected) =>
        Assert.Equal(expected, new Glob(pattern).IsMatch(text));

    [Theory]
    [InlineData("reports://*", "reports://q1.csv", true)]
    [InlineData("reports://*", "reports://2026/q1.csv", false)]
    [InlineData("reports://**", "reports://2026/q1/sales.csv", true)]
    [InlineData("reports://*/q1.csv", "reports://2026/q1.csv", true)]
    [InlineData("reports://*/q1.csv", "reports://2026/x/q1.csv", false)]
    [InlineData("reports://**/q1.csv", "reports://2026/x/q1.csv", true)]
    [InlineData("file:///**", "file:///etc/passwd", true)]
    [InlineData("*", "a/b", false)]
    [InlineData("**", "a/b", true)]
    public void IsMatch_SingleStarStopsAtSlash_DoubleStarCrossesIt(string pattern, string text, bool expected) =>
        Assert.Equal(expected, new Glob(pattern).IsMatch(text));

    [Fact]
    public void IsCoveredBy_LiteralByMatchingGlob_True()
    {
        Assert.True(new Glob("delete_mail").IsCoveredBy(new Glob("delete_*")));
        Assert.True(new Glob("delete_*").IsCoveredBy(new Glob("*")));
        Assert.False(new Glob("delete_*").IsCoveredBy(new Glob("delete_m*")));
        Assert.False(new Glob("send").IsCoveredBy(new Glob("delete_*")));
    }

    [Fact]
    public void Decide_ServerAndToolGlobs_MatchSeparately()
    {
        var policy = PolicyKit.Compile("""
            rules:
              - id: mail-deletes
                match: { server: "mail*", tool: "delete_*" }
                effect: ask
              - id: any-server-read
                match: { tool: "read_*" }
                effect: allow
            """);
        Assert.Equal("ask by mail-deletes", PolicyKit.Decide(policy, PolicyKit.Call("mail-eu", "delete_all")));
        Assert.Equal("deny by default", PolicyKit.Decide(policy, PolicyKit.Call("forum", "delete_all")));
        Assert.Equal("allow by any-server-read", PolicyKit.Decide(policy, PolicyKit.Call("forum", "read_post")));

        // The agent-facing name server__tool is never matched as one string.
        Assert.Equal("deny by default", PolicyKit.Decide(policy, PolicyKit.Call("forum", "mail__delete_x")));
    }

    [Fact]
    public void Decide_ResourceGlobs_RespectSlashes()
    {
        var policy = PolicyKit.Compile("""
            rules:
              - id: top-level-reports
                match: { resource: "reports://*" }
                effect: allow
              - id: archived
                match: { resource: "archive://**" }
                effect: ask
            """);
        Assert.Equal("allow by top-level-reports", PolicyKit.Decide(policy, PolicyKit.Call("docs", "reports://a.csv", operation: McpOperation.ResourceRead)));
        Assert.Equal("deny by default", PolicyKit.Decide(policy, PolicyKit.Call("docs", "reports://2026/a.csv", operation: McpOperation.ResourceRead)));
        Assert.Equal("ask by archived", PolicyKit.Decide(policy, PolicyKit.Call("docs", "archive://2019/12/a.csv", operation: McpOperation.ResourceRead)));
    }
}
