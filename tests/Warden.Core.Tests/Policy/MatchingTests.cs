using Warden.Core.Policy;
using static Warden.Core.Tests.Policy.PolicyKit;

namespace Warden.Core.Tests.Policy;

public class MatchingTests
{
    private const ToolClasses Unannotated = ToolClasses.Mutating | ToolClasses.Destructive | ToolClasses.Outbound;

    [Fact]
    public void FromAnnotations_Hints_DeriveClasses()
    {
        Assert.Equal(ToolClasses.ReadOnly, ToolClassifier.FromAnnotations(true, null, null));
        Assert.Equal(Unannotated, ToolClassifier.FromAnnotations(null, null, null));
        Assert.Equal(ToolClasses.Mutating, ToolClassifier.FromAnnotations(false, false, false));
        Assert.Equal(ToolClasses.Mutating | ToolClasses.Outbound, ToolClassifier.FromAnnotations(false, false, true));
        Assert.Equal(ToolClasses.Mutating | ToolClasses.Destructive, ToolClassifier.FromAnnotations(null, true, false));
    }

    [Fact]
    public void Decide_ClassMatch_AnyListedClassSuffices()
    {
        var policy = Compile("""
            rules:
              - id: reads
                match: { class: read_only }
                effect: allow
              - id: risky
                match: { class: [destructive, outbound] }
                effect: ask
            """);
        Assert.Equal("allow by reads", Decide(policy, Call("s", "t", classes: ToolClasses.ReadOnly)));
        Assert.Equal("ask by risky", Decide(policy, Call("s", "t", classes: ToolClasses.Mutating | ToolClasses.Outbound)));
        Assert.Equal("ask by risky", Decide(policy, Call("s", "t", classes: ToolClasses.Mutating | ToolClasses.Destructive)));
        Assert.Equal("deny by default", Decide(policy, Call("s", "t", classes: ToolClasses.Mutating)));
    }

    [Fact]
    public void Decide_UpstreamLyingWithReadOnlyHint_PolicyClassesWin()
    {
        var policy = Compile("""
            classes:
              forum: { post: [mutating, outbound] }
            rules:
              - id: reads
                match: { class: read_only }
                effect: allow
              - id: posting
                match: { class: outbound }
                effect: ask
            """);
        var lying = Call("forum", "post", classes: ToolClassifier.FromAnnotations(readOnlyHint: true, null, null));
        Assert.Equal("ask by posting", Decide(policy, lying));
        Assert.Equal(ToolClasses.Mutating | ToolClasses.Outbound, policy.EffectiveClasses(lying));
        Assert.Equal(ToolClasses.Mutating | ToolClasses.Outbound, policy.ClassesOf("forum", "post"));

        // Only the named server's tool is overridden.
        Assert.Equal("allow by reads", Decide(policy, Call("other", "post", classes: ToolClasses.ReadOnly)));
        Assert.Null(policy.ClassesOf("other", "post"));
    }

    [Fact]
    public void ClassesOf_GlobAssignments_LastMatchingEntryWins()
    {
        var policy = Compile("""
            classes:
              workplace:
                "*": [mutating, destructive, outbound]
                read_*: [read_only]
                read_and_forward: [read_only, outbound]
            rules: []
            """);
        Assert.Equal(Unannotated, policy.ClassesOf("workplace", "drop_all"));
        Assert.Equal(ToolClasses.ReadOnly, policy.ClassesOf("workplace", "read_mail"));
        Assert.Equal(ToolClasses.ReadOnly | ToolClasses.Outbound, policy.ClassesOf("workplace", "read_and_forward"));
    }

    [Fact]
    public void Decide_ClassOverride_ReplacesRatherThanAdds()
    {
        // An upstream says destructive; the operator knows better. The override replaces the set.
        var policy = Compile("""
            classes:
              notes: { archive: [mutating] }
            rules:
              - id: no-destruction
                match: { class: destructive }
                effect: deny
              - id: edits
                match: { class: mutating }
                effect: allow
            """);
        Assert.Equal("allow by edits", Decide(policy, Call("notes", "archive", classes: Unannotated)));
        Assert.Equal("deny by no-destruction", Decide(policy, Call("notes", "erase", classes: Unannotated)));
    }

    [Fact]
    public void Decide_ConditionSeesOverriddenClasses()
    {
        var policy = Compile("""
            classes:
              forum: { post: [mutating, outbound] }
            rules:
              - id: outbound-by-condition
                match: { server: forum }
                when: '"outbound" in context.tool.classes && !("read_only" in context.tool.classes)'
                effect: ask
            """);
        Assert.Equal("ask by outbound-by-condition", Decide(policy, Call("forum", "post", classes: ToolClasses.ReadOnly)));
    }

    [Fact]
    public void Decide_AgentNames_MatchExactly()
    {
        var policy = Compile("""
            rules:
              - id: only-helpers
                match: { agent: [inbox-helper, forum-helper] }
                effect: allow
            """);
        Assert.Equal("allow by only-helpers", Decide(policy, Call("s", "t", agent: "forum-helper")));
        Assert.Equal("deny by default", Decide(policy, Call("s", "t", agent: "inbox-helper-2")));
        Assert.Equal("deny by default", Decide(policy, Call("s", "t", agent: "Inbox-Helper")));
    }

    [Fact]
    public void Decide_Groups_FromCredentialOrPolicy()
    {
        var policy = Compile("""
            agents:
              inbox-helper: { groups: [assistants] }
            rules:
              - id: assistants
                match: { group: assistants }
                effect: allow
              - id: ops
                match: { group: ops, tool: restart }
                effect: ask
            """);

        // From policy.
        Assert.Equal("allow by assistants", Decide(policy, Call("s", "t", agent: "inbox-helper")));

        // From the credential.
        Assert.Equal("allow by assistants", Decide(policy, Call("s", "t", agent: "someone", groups: ["assistants"])));

        // From both: the credential's ops plus the policy's assistants.
        Assert.Equal("ask by ops", Decide(policy, Call("s", "restart", agent: "inbox-helper", groups: ["ops"])));
        Assert.Equal("deny by default", Decide(policy, Call("s", "t", agent: "someone", groups: ["other"])));
        Assert.Equal(["assistants"], policy.GroupsOf("inbox-helper"));
        Assert.Empty(policy.GroupsOf("someone"));
    }

    [Fact]
    public void Decide_ConditionSeesGroupsFromCredentialAndPolicy()
    {
        var policy = Compile("""
            agents:
              bot: { groups: [assistants] }
            rules:
              - id: both-groups
                when: '"assistants" in context.agent.groups && "ops" in context.agent.groups'
                effect: allow
            """);
        Assert.Equal("allow by both-groups", Decide(policy, Call("s", "t", agent: "bot", groups: ["ops"])));
        Assert.Equal("deny by default", Decide(policy, Call("s", "t", agent: "bot")));
        Assert.Equal("deny by default", Decide(policy, Call("s", "t", agent: "other", groups: ["ops"])));
    }

    [Fact]
    public void Decide_RuleWithoutMethod_AppliesToToolCallsOnly()
    {
        var policy = Compile("""
            default: deny
            rules:
              - id: everything
                effect: allow
            """);
        Assert.Equal("allow by everything", Decide(policy, Call("s", "t")));
        Assert.Equal("deny by default", Decide(policy, Call("s", "docs://a", operation: McpOperation.ResourceRead)));
        Assert.Equal("deny by default", Decide(policy, Call("s", "p", operation: McpOperation.PromptGet)));
        Assert.Equal("deny by default", Decide(policy, Call("s", "", operation: McpOperation.Sampling)));
        Assert.Equal("deny by default", Decide(policy, Call("s", "", operation: McpOperation.Elicitation)));
    }

    [Fact]
    public void Decide_ResourceAndPromptPatterns_ImplyTheirMethod()
    {
        var policy = Compile("""
            rules:
              - id: docs
                match: { server: docs, resource: "docs://public/**" }
                effect: allow
              - id: prompts
                match: { prompt: "summarise_*" }
                effect: allow
            """);
        Assert.Equal("allow by docs", Decide(policy, Call("docs", "docs://public/a/b.md", operation: McpOperation.ResourceRead)));
        Assert.Equal("deny by default", Decide(policy, Call("docs", "docs://private/a.md", operation: McpOperation.ResourceRead)));
        Assert.Equal("allow by prompts", Decide(policy, Call("any", "summarise_thread", operation: McpOperation.PromptGet)));

        // A prompt pattern never lets a tool of the same name through.
        Assert.Equal("deny by default", Decide(policy, Call("any", "summarise_thread")));
        Assert.Equal("deny by default", Decide(policy, Call("docs", "docs://public/a.md")));
    }

    [Theory]
    [InlineData("sampling", McpOperation.Sampling)]
    [InlineData("sampling/createMessage", McpOperation.Sampling)]
    [InlineData("elicitation", McpOperation.Elicitation)]
    [InlineData("elicitation/create", McpOperation.Elicitation)]
    [InlineData("prompts/get", McpOperation.PromptGet)]
    [InlineData("resources/read", McpOperation.ResourceRead)]
    [InlineData("tools/call", McpOperation.ToolCall)]
    public void Decide_MethodMatch_SelectsOperation(string method, McpOperation operation)
    {
        var policy = Compile($$"""
            rules:
              - id: m
                match: { method: "{{method}}", server: trusted }
                effect: ask
            """);
        foreach (var op in Enum.GetValues<McpOperation>())
        {
            var expected = op == operation ? "ask by m" : "deny by default";
            Assert.Equal(expected, Decide(policy, Call("trusted", "x", operation: op)));
        }

        Assert.Equal("deny by default", Decide(policy, Call("untrusted", "x", operation: operation)));
    }

    [Fact]
    public void Decide_SeveralMethods_MatchEach()
    {
        var policy = Compile("""
            rules:
              - id: upstream-requests
                match: { method: [sampling, elicitation] }
                effect: ask
            """);
        Assert.Equal("ask by upstream-requests", Decide(policy, Call("s", "", operation: McpOperation.Sampling)));
        Assert.Equal("ask by upstream-requests", Decide(policy, Call("s", "", operation: McpOperation.Elicitation)));
        Assert.Equal("deny by default", Decide(policy, Call("s", "t")));
    }

    [Fact]
    public void Decide_AllMatchFieldsMustHold()
    {
        var policy = Compile("""
            agents:
              bot: { groups: [assistants] }
            rules:
              - id: narrow
                match: { server: mail, tool: send, class: outbound, agent: bot, group: assistants }
                effect: allow
            """);
        Assert.Equal("allow by narrow", Decide(policy, Call("mail", "send", agent: "bot")));
        Assert.Equal("deny by default", Decide(policy, Call("mail", "send", agent: "bot", classes: ToolClasses.Mutating)));
        Assert.Equal("deny by default", Decide(policy, Call("mail", "send", agent: "other", groups: ["assistants"])));
        Assert.Equal("deny by default", Decide(policy, Call("mail2", "send", agent: "bot")));
    }
}
