using Warden.Core.Pipeline;
using Warden.Core.Policy;
using static Warden.Core.Tests.Policy.PolicyKit;

namespace Warden.Core.Tests.Policy;

public class DecisionTests
{
    [Fact]
    public void Decide_ConditionOverArgs_DecidesByValue()
    {
        var policy = Compile("""
            lists:
              payees: [alice, bob]
            rules:
              - id: small
                match: { tool: pay }
                when: args.amount < 1000.0 && args.recipient in lists.payees
                effect: allow
              - id: large
                match: { tool: pay }
                when: args.amount >= 1000.0
                effect: ask
            """);
        Assert.Equal("allow by small", Decide(policy, Call("bank", "pay", """{"amount": 999.5, "recipient": "alice"}""")));
        Assert.Equal("allow by small", Decide(policy, Call("bank", "pay", """{"amount": 10, "recipient": "bob"}""")));
        Assert.Equal("ask by large", Decide(policy, Call("bank", "pay", """{"amount": 1000, "recipient": "alice"}""")));
        Assert.Equal("deny by default", Decide(policy, Call("bank", "pay", """{"amount": 5, "recipient": "mallory"}""")));
    }

    [Fact]
    public void Decide_ManyRulesReadingOneArgument_EachRuleSeesItsOwnList()
    {
        // A decision reads each argument once and remembers its membership in each list; rules that test the same
        // argument against different lists, repeatedly and in any order, must still each get their own answer.
        var policy = Compile("""
            lists:
              a: [ann, bob]
              b: [bob, cat, fay]
              c: [cat, dan]
            rules:
              - { id: a1, match: { tool: t }, when: args.s in lists.a, effect: allow }
              - { id: b1, match: { tool: t }, when: args.s in lists.b && args.n > 1, effect: deny }
              - { id: c1, match: { tool: t }, when: args.s in lists.c && args.n > 2, effect: ask }
              - { id: b2, match: { tool: t }, when: 'args.s in lists.b && args.n < 1.5', effect: shadow }
              - { id: c2, match: { tool: t }, when: 'args.s in lists.c && args.n < 1.5', effect: deny }
              - { id: a2, match: { tool: t }, when: '!(args.s in lists.a) && args.n == 0', effect: ask }
            """);
        Assert.Equal("allow by a1", Decide(policy, Call("s", "t", """{"s": "ann", "n": 5}""")));
        Assert.Equal("deny by b1", Decide(policy, Call("s", "t", """{"s": "bob", "n": 5}""")));
        Assert.Equal("shadow by b2", Decide(policy, Call("s", "t", """{"s": "bob", "n": 1}""")));
        Assert.Equal("shadow by b2", Decide(policy, Call("s", "t", """{"s": "fay", "n": 1}""")));
        Assert.Equal("deny by b1", Decide(policy, Call("s", "t", """{"s": "cat", "n": 3}""")));
        Assert.Equal("deny by c2", Decide(policy, Call("s", "t", """{"s": "cat", "n": 1}""")));
        Assert.Equal("deny by c2", Decide(policy, Call("s", "t", """{"s": "dan", "n": 1.25}""")));
        Assert.Equal("ask by c1", Decide(policy, Call("s", "t", """{"s": "dan", "n": 2.5}""")));
        Assert.Equal("ask by a2", Decide(policy, Call("s", "t", """{"s": "eve", "n": 0}""")));
        Assert.Equal("error by a1", Decide(policy, Call("s", "t", """{"n": 0}""")));
        Assert.Equal("deny by default", Decide(policy, Call("s", "t", """{"s": 7, "n": 2}""")));
    }

    [Fact]
    public void Decide_RulesSharingACondition_EachStillAppliesByItsOwnMatchAndEffect()
    {
        // A decision answers a condition text once for all the rules that share it; each rule must still be
        // filtered by its own agent, group and tool, and keep its own effect, in every combination of calls.
        var policy = Compile("""
            lists:
              payees: [alice, bob]
            rules:
              - { id: fin-allow, match: { tool: pay, group: finance }, when: 'args.amount < 100.0 && args.to in lists.payees', effect: allow }
              - { id: ops-ask, match: { tool: pay, group: ops }, when: 'args.amount < 100.0 && args.to in lists.payees', effect: ask }
              - { id: bot-deny, match: { tool: pay, agent: bot }, when: 'args.amount < 100.0 && args.to in lists.payees', effect: deny }
              - { id: other-tool, match: { tool: refund }, when: 'args.amount < 100.0 && args.to in lists.payees', effect: deny }
              - { id: big, match: { tool: pay }, when: 'args.amount >= 100.0', effect: ask }
            """);
        const string Small = """{"amount": 5, "to": "alice"}""";
        Assert.Equal("allow by fin-allow", Decide(policy, Call("bank", "pay", Small, agent: "a", groups: ["finance"])));
        Assert.Equal("ask by ops-ask", Decide(policy, Call("bank", "pay", Small, agent: "a", groups: ["finance", "ops"])));
        Assert.Equal("deny by bot-deny", Decide(policy, Call("bank", "pay", Small, agent: "bot", groups: ["finance"])));
        Assert.Equal("deny by default", Decide(policy, Call("bank", "pay", Small, agent: "a", groups: ["sales"])));
        Assert.Equal("deny by other-tool", Decide(policy, Call("bank", "refund", Small, agent: "a", groups: ["finance"])));
        Assert.Equal("deny by default", Decide(policy, Call("bank", "pay", """{"amount": 5, "to": "eve"}""", agent: "a", groups: ["finance"])));
        Assert.Equal("ask by big", Decide(policy, Call("bank", "pay", """{"amount": 500, "to": "alice"}""", agent: "a", groups: ["finance"])));

        // An error in the shared condition is an error of the first rule that applies, whatever answers were remembered before.
        Assert.Equal("error by fin-allow", Decide(policy, Call("bank", "pay", """{"to": "alice"}""", agent: "a", groups: ["finance"])));
        Assert.Equal("error by ops-ask", Decide(policy, Call("bank", "pay", """{"to": "alice"}""", agent: "a", groups: ["ops"])));
        Assert.Equal("allow by fin-allow", Decide(policy, Call("bank", "pay", Small, agent: "a", groups: ["finance"])));
    }

    [Fact]
    public void Decide_MoreArgumentsThanTheDecisionRemembers_StillReadsEachCorrectly()
    {
        // The per-decision argument cache remembers 16 fields; rules reading more fields read the rest directly.
        var rules = string.Concat(Enumerable.Range(0, 24).Select(i =>
            $"  - {{ id: f{i}, match: {{ tool: t }}, when: 'args.f{i} == {i} && args.f{i} in lists.l', effect: {(i == 20 ? "deny" : "allow")} }}\n"));
        var policy = Compile("lists:\n  l: [x]\nrules:\n" + rules);
        var args = "{" + string.Join(", ", Enumerable.Range(0, 24).Select(i => $"\"f{i}\": {i}")) + "}";
        Assert.Equal("deny by default", Decide(policy, Call("s", "t", args)));
        var withDeny = policy.Explain(Call("s", "t", args.Replace("\"f20\": 20", "\"f20\": 21", StringComparison.Ordinal)));
        Assert.Equal("deny by default", Show(withDeny.Decision));
        Assert.Equal("error by f23", Decide(policy, Call("s", "t", args.Replace("\"f23\": 23", "\"g\": 0", StringComparison.Ordinal))));
        var text = Compile("lists:\n  l: [x]\nrules:\n" + rules.Replace("args.f20 in lists.l", "true", StringComparison.Ordinal));
        Assert.Equal("deny by f20", Decide(text, Call("s", "t", args)));
    }

    [Fact]
    public void Decide_ConditionOverContext_ReadsAgentSessionToolAndTime()
    {
        var policy = Compile("""
            rules:
              - id: by-agent
                when: context.agent.name == "bot" && context.tool.server == "s" && context.tool.name == "t"
                effect: allow
              - id: confidential-session
                when: '"confidential" in context.session.labels'
                effect: deny
              - id: office-hours
                match: { tool: late }
                when: context.now.getHours() >= 18
                effect: ask
            """);
        Assert.Equal("allow by by-agent", Decide(policy, Call("s", "t", agent: "bot")));
        Assert.Equal("deny by default", Decide(policy, Call("s", "t", agent: "other")));
        Assert.Equal("deny by confidential-session", Decide(policy, Call("s", "t", agent: "bot", labels: ["confidential"])));
        Assert.Equal("deny by default", Decide(policy, Call("s", "late")));
    }

    [Fact]
    public void Decide_ConditionError_IsErrorDecisionNamingTheRule()
    {
        var policy = Compile("""
            default: allow
            rules:
              - id: bulk
                match: { tool: delete }
                when: size(args.ids) > 5
                effect: ask
            """);
        var d = policy.Decide(Call("mail", "delete", "{}"));
        Assert.True(d.IsError);
        Assert.Equal(Effect.Deny, d.Effect);
        Assert.Equal("bulk", d.RuleId);
        Assert.Contains("bulk", d.Reason, StringComparison.Ordinal);
        Assert.Equal(policy.Version, d.PolicyVersion);
        Assert.StartsWith("denied: Warden could not decide", d.AgentMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"ids": 3}""")]
    [InlineData("""{"ids": null}""")]
    [InlineData("""{}""")]
    public void Decide_ConditionErrorInAllowRule_NeverAllows(string args)
    {
        var policy = Compile("""
            default: allow
            rules:
              - id: few
                match: { tool: delete }
                when: size(args.ids) <= 5
                effect: allow
            """);
        Assert.Equal("error by few", Decide(policy, Call("mail", "delete", args)));
    }

    [Fact]
    public void Decide_ConditionErrorAlongsideDeny_IsStillAnError_InAnyOrder()
    {
        const string deny = """
              - id: deny-all
                effect: deny
            """;
        const string broken = """
              - id: broken
                when: args.missing > 1
                effect: allow
            """;
        var a = Compile("rules:\n" + deny + "\n" + broken + "\n");
        var b = Compile("rules:\n" + broken + "\n" + deny + "\n");
        var call = Call("s", "t", "{}");
        Assert.Equal("error by broken", Decide(a, call));
        Assert.Equal("error by broken", Decide(b, call));
    }

    [Fact]
    public void Decide_ConditionOnNonMatchingRule_IsNotEvaluated()
    {
        var policy = Compile("""
            rules:
              - id: only-for-delete
                match: { tool: delete }
                when: size(args.ids) > 5
                effect: ask
              - id: reads
                match: { tool: read }
                effect: allow
            """);
        Assert.Equal("allow by reads", Decide(policy, Call("mail", "read", "{}")));
    }

    [Theory]
    [InlineData("allow", Effect.Allow)]
    [InlineData("deny", Effect.Deny)]
    [InlineData("ask", Effect.Ask)]
    [InlineData("shadow", Effect.Shadow)]
    public void Decide_NoRuleMatches_DefaultEffectNamedDefault(string name, Effect effect)
    {
        var policy = Compile($"default: {name}\nrules: []\n");
        var d = policy.Decide(Call("s", "t"));
        Assert.Equal(effect, d.Effect);
        Assert.Equal("default", d.RuleId);
        Assert.False(d.IsError);
        Assert.Equal(effect, policy.Default);
    }

    [Fact]
    public void Decide_DefaultNotWritten_IsDeny()
    {
        var policy = Compile("rules: []\n");
        Assert.Equal("deny by default", Decide(policy, Call("s", "t")));
    }

    [Theory]
    [InlineData("allow,shadow", "shadow")]
    [InlineData("allow,ask", "ask")]
    [InlineData("shadow,ask", "ask")]
    [InlineData("ask,deny", "deny")]
    [InlineData("allow,deny", "deny")]
    [InlineData("allow,shadow,ask,deny", "deny")]
    [InlineData("deny,ask,shadow,allow", "deny")]
    [InlineData("shadow,allow", "shadow")]
    public void Decide_SeveralRulesMatch_DenyOverAskOverShadowOverAllow(string effects, string expected)
    {
        var rules = effects.Split(',').Select((e, i) => $"  - id: r{i}-{e}\n    when: 'true'\n    effect: {e}\n");
        var policy = Compile("rules:\n" + string.Concat(rules));
        var d = policy.Decide(Call("s", "t"));
        Assert.Equal(expected, EffectNames.Name(d.Effect));
        Assert.EndsWith("-" + expected, d.RuleId, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_AllowRuleAddedLater_NeverOverridesDeny()
    {
        var policy = Compile("""
            rules:
              - id: no-deletes
                match: { tool: "delete_*" }
                effect: deny
                message: deleting is not allowed
              - id: please-allow
                match: { server: mail, tool: delete_one }
                effect: allow
            """);
        var d = policy.Decide(Call("mail", "delete_one"));
        Assert.Equal(Effect.Deny, d.Effect);
        Assert.Equal("no-deletes", d.RuleId);
        Assert.Equal("denied by rule no-deletes: deleting is not allowed", d.AgentMessage);
    }

    [Fact]
    public void Decide_Reason_IsMessageThenDescription()
    {
        var policy = Compile("""
            rules:
              - id: a
                match: { tool: a }
                description: the description
                effect: ask
              - id: b
                match: { tool: b }
                description: the description
                message: the message
                effect: deny
            """);
        Assert.Equal("the description", policy.Decide(Call("s", "a")).Reason);
        Assert.Equal("the message", policy.Decide(Call("s", "b")).Reason);
    }

    [Fact]
    public void Decide_EveryDecision_NamesThePolicyVersion()
    {
        var policy = Compile("rules: [{ id: a, match: { tool: a }, effect: allow }]\n");
        Assert.Equal(12, policy.Version.Length);
        Assert.Equal(policy.Version, policy.Decide(Call("s", "a")).PolicyVersion);
        Assert.Equal(policy.Version, policy.Decide(Call("s", "b")).PolicyVersion);
        Assert.NotEqual(policy.Version, Compile("rules: [{ id: a, match: { tool: a }, effect: deny }]\n").Version);
    }

    [Fact]
    public void Decide_ManyTargets_SameAnswerPastTheIndexCache()
    {
        var policy = Compile("""
            rules:
              - id: reports
                match: { resource: "reports://**" }
                effect: allow
            """);
        for (var i = 0; i < 5000; i++)
        {
            Assert.Equal("allow by reports", Decide(policy, Call("docs", $"reports://{i}/x.csv", operation: McpOperation.ResourceRead)));
        }

        Assert.Equal("deny by default", Decide(policy, Call("docs", "other://x", operation: McpOperation.ResourceRead)));
    }

    [Fact]
    public void PolicyStage_NoPolicyLoaded_RefusesEveryCallAsError()
    {
        var holder = new PolicyHolder();
        var pipeline = new DecisionPipeline([new PolicyStage(holder)], () => holder.Version);
        var d = pipeline.Decide(Call("s", "t"));
        Assert.True(d.IsError);
        Assert.Equal(Effect.Deny, d.Effect);
        Assert.Equal("none", d.PolicyVersion);

        var policy = Compile("default: allow\nrules: []\n");
        holder.Swap(policy, DateTimeOffset.UnixEpoch);
        Assert.Equal(Effect.Allow, pipeline.Decide(Call("s", "t")).Effect);
        Assert.Equal(policy.Version, holder.Version);

        holder.Reject(new PolicyRejection(DateTimeOffset.UnixEpoch, ["policy.yaml:1:1: error"]));
        Assert.Same(policy, holder.Current);
        Assert.NotNull(holder.LastRejection);
    }
}
