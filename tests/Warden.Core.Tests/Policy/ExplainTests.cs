using Warden.Core.Policy;
using static Warden.Core.Tests.Policy.PolicyKit;

namespace Warden.Core.Tests.Policy;

public class ExplainTests
{
    private static readonly CompiledPolicy Policy = Compile("""
        agents:
          bot: { groups: [assistants] }
        classes:
          mail: { send: [mutating, outbound] }
        rules:
          - id: other-server
            match: { server: forum }
            effect: allow
          - id: other-tool
            match: { server: mail, tool: read }
            effect: allow
          - id: resources
            match: { resource: "docs://**" }
            effect: allow
          - id: wrong-class
            match: { class: read_only }
            effect: allow
          - id: wrong-agent
            match: { agent: someone-else }
            effect: deny
          - id: wrong-group
            match: { group: admins }
            effect: deny
          - id: condition-false
            match: { tool: send }
            when: size(args.to) > 10
            effect: deny
          - id: condition-true
            match: { tool: send }
            when: size(args.to) > 0
            effect: ask
          - id: plain-match
            match: { class: outbound }
            effect: allow
        """);

    [Fact]
    public void Explain_EveryRule_TracedWithReason()
    {
        var (decision, trace) = Policy.Explain(Call("mail", "send", """{"to": ["a@x"]}""", agent: "bot"));
        Assert.Equal("ask by condition-true", Show(decision));
        Assert.Equal(Policy.Rules.Select(r => r.Id), trace.Select(t => t.RuleId));
        var why = trace.ToDictionary(t => t.RuleId);
        Assert.Contains("server 'mail' does not match forum", why["other-server"].Why, StringComparison.Ordinal);
        Assert.Contains("'send' does not match read", why["other-tool"].Why, StringComparison.Ordinal);
        Assert.Equal("method does not match", why["resources"].Why);
        Assert.Contains("tool classes [mutating, outbound] include none of [read_only]", why["wrong-class"].Why, StringComparison.Ordinal);
        Assert.Contains("agent 'bot' is not someone-else", why["wrong-agent"].Why, StringComparison.Ordinal);
        Assert.Contains("none of the groups admins", why["wrong-group"].Why, StringComparison.Ordinal);
        Assert.Contains("is false", why["condition-false"].Why, StringComparison.Ordinal);
        Assert.Contains("is true", why["condition-true"].Why, StringComparison.Ordinal);
        Assert.Equal("matched", why["plain-match"].Why);
        Assert.Equal(["condition-true", "plain-match"], trace.Where(t => t.Matched).Select(t => t.RuleId));
        Assert.Equal(Effect.Ask, why["condition-true"].Effect);
    }

    [Fact]
    public void Explain_ConditionError_MarkedAsMatchedError()
    {
        var (decision, trace) = Policy.Explain(Call("mail", "send", "{}", agent: "bot"));
        Assert.True(decision.IsError);
        var t = trace.First(t => t.RuleId == "condition-false");
        Assert.True(t.Matched);
        Assert.Contains("counts as an error", t.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_DecisionEqualsDecide()
    {
        foreach (var call in new[] { Call("mail", "send", """{"to": []}"""), Call("forum", "x"), Call("mail", "read") })
        {
            Assert.Equal(Policy.Decide(call), Policy.Explain(call).Decision);
        }
    }
}
