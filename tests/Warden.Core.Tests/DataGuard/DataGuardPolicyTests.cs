using Warden.Core.DataGuard;
using Warden.Core.Pipeline;
using Warden.Core.Policy;
using Warden.Core.Stops;
using Warden.Core.Tests.Policy;

namespace Warden.Core.Tests.DataGuard;

public sealed class DataGuardPolicyTests
{
    private const string Guarded = """
        default: allow
        rules:
          - id: labelled-agents-do-not-post
            match: { class: outbound }
            when: '"confidential" in context.session.labels'
            effect: ask
        data_guard:
          label_ttl: 2h
          sources:
            - { server: hr, labels: [confidential] }
          patterns:
            - { kind: codename, regex: '\bPROJECT-[A-Z]{4}\b', label: confidential }
          keywords:
            - { kind: marker, words: [internal only] }
          actions:
            arguments: { secret: block, email: redact, codename: ask }
            results: { secret: [redact, label], personal: label }
        """;

    private static (DecisionPipeline Pipeline, DataGuardStage Stage, PolicyHolder Holder) Pipeline(string yaml)
    {
        var holder = new PolicyHolder();
        holder.Swap(PolicyKit.Compile(yaml), DateTimeOffset.UnixEpoch);
        var stage = new DataGuardStage(holder, new LabelTable());
        var pipeline = new DecisionPipeline([new StopStage(new StopTable(), () => holder.Version), stage, new PolicyStage(holder)], () => holder.Version);
        return (pipeline, stage, holder);
    }

    [Fact]
    public void Parse_DataGuardSection_ReadsEverything()
    {
        var policy = PolicyKit.Compile(Guarded);
        var g = policy.DataGuard!;
        Assert.Equal(TimeSpan.FromHours(2), g.Settings.LabelTtl);
        Assert.Equal(["confidential"], g.SourceLabelsFor(McpOperation.ToolCall, "hr", "read_file"));
        Assert.Empty(g.SourceLabelsFor(McpOperation.ToolCall, "mail", "read_mail"));
        var secret = new Finding("aws_access_key", FindingCategory.Secret, "$.a", 1, "x");
        Assert.Equal(GuardAction.Block, g.ActionFor(secret, GuardDirection.Arguments));
        Assert.Equal(GuardAction.Redact | GuardAction.Label, g.ActionFor(secret, GuardDirection.Results));
    }

    [Theory]
    [InlineData("data_guard: { actions: { arguments: { aws_key: block } } }", "unknown finding kind 'aws_key'")]
    [InlineData("data_guard: { actions: { arguments: { secret: shred } } }", "unknown data_guard action 'shred'")]
    [InlineData("data_guard: { actions: { results: { secret: ask } } }", "ask applies to arguments")]
    [InlineData("data_guard: { patterns: [ { kind: k, regex: '(a)\\1' } ] }", "pattern 'k'")]
    [InlineData("data_guard: { label_scope: forever }", "label_scope must be agent or session")]
    [InlineData("data_guard: { patterns: [ { kind: email, regex: 'x' } ] }", "already defined or built in")]
    public void Parse_Mistakes_AreErrors(string yaml, string message) =>
        Assert.Contains(PolicyKit.Errors(yaml), d => d.Message.Contains(message, StringComparison.Ordinal));

    [Fact]
    public void Pipeline_SecretInArguments_DeniesWithDataGuardRule()
    {
        var (pipeline, _, _) = Pipeline(Guarded);
        var call = PolicyKit.Call("forum", "post", """{"text":"key ghp_aaaaBBBBccccDDDDeeeeFFFFgggg0123456789"}""");
        var d = pipeline.Decide(call);
        Assert.Equal(Effect.Deny, d.Effect);
        Assert.Equal("data-guard:github_token", d.RuleId);
        Assert.Contains(call.Findings!, f => f.Kind == "github_token" && f.Location == "$.text");
    }

    [Fact]
    public void Pipeline_AskFinding_HoldsAnAllowedCall_ButNeverWeakensADeny()
    {
        var (pipeline, _, _) = Pipeline(Guarded);
        var ask = pipeline.Decide(PolicyKit.Call("forum", "post", """{"text":"about PROJECT-ORCA"}"""));
        Assert.Equal((Effect.Ask, "data-guard:codename"), (ask.Effect, ask.RuleId));

        var (strict, _, _) = Pipeline(Guarded.Replace("default: allow", "default: deny", StringComparison.Ordinal));
        var denied = strict.Decide(PolicyKit.Call("forum", "post", """{"text":"about PROJECT-ORCA"}"""));
        Assert.Equal((Effect.Deny, "default"), (denied.Effect, denied.RuleId));
    }

    [Fact]
    public void Pipeline_RedactFinding_ForwardsRewrittenArguments()
    {
        var (pipeline, _, _) = Pipeline(Guarded);
        var call = PolicyKit.Call("forum", "post", """{"text":"write to frank.li@example.org","n":1}""");
        Assert.Equal(Effect.Allow, pipeline.Decide(call).Effect);
        Assert.Equal("write to [REDACTED:email]", call.ForwardArguments!["text"].GetString());
        Assert.Equal(1, call.ForwardArguments["n"].GetInt32());
    }

    [Fact]
    public void Results_FromALabelledSource_LabelTheAgentAcrossSessions_AndFingerprintTheData()
    {
        var (pipeline, stage, _) = Pipeline(Guarded);
        var now = DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var read = PolicyKit.Call("hr", "read_file", "{}");
        var scan = stage.BeginResult(read, now)!;
        var text = scan.Text("content[0]", "Salary review: 104,000 USD from March, key AKIAEXAMPLEFAKE00042");
        scan.Commit();
        Assert.Contains("[REDACTED:aws_access_key]", text, StringComparison.Ordinal);
        Assert.Contains("confidential", scan.NewLabels);

        // Another session of the same agent, an hour later: still labelled, and the values are recognised.
        var post = new CallContext
        {
            Agent = read.Agent, SessionId = "agent-1/other", Operation = McpOperation.ToolCall, Server = "forum", Target = "post",
            Arguments = PolicyKit.Call("forum", "post", """{"text":"the raise is 104 000"}""").Arguments, ReceivedAt = now.AddHours(1),
            AnnotatedClasses = ToolClasses.Outbound,
        };
        var d = pipeline.Decide(post);
        Assert.Contains("confidential", post.SessionLabels);
        Assert.Equal((Effect.Deny, "data-guard:fingerprint"), (d.Effect, d.RuleId));

        // After the label's time: neither.
        var later = new CallContext
        {
            Agent = read.Agent, SessionId = "agent-1/third", Operation = McpOperation.ToolCall, Server = "forum", Target = "post",
            Arguments = post.Arguments, ReceivedAt = now.AddHours(3), AnnotatedClasses = ToolClasses.Outbound,
        };
        Assert.Equal(Effect.Allow, pipeline.Decide(later).Effect);
        Assert.Empty(later.SessionLabels);
    }

    [Fact]
    public void Results_PerSessionScope_StayInTheSession()
    {
        var (_, stage, _) = Pipeline(Guarded.Replace("label_ttl: 2h", "label_ttl: 2h\n  label_scope: session", StringComparison.Ordinal));
        var now = DateTimeOffset.UnixEpoch;
        var read = PolicyKit.Call("hr", "read_file", "{}");
        var scan = stage.BeginResult(read, now)!;
        scan.Text("content[0]", "x");
        scan.Commit();
        Assert.Contains("confidential", stage.Labels.LabelsOf("agent-1", "agent-1", now));
        Assert.Empty(stage.Labels.LabelsOf("agent-1", "agent-1/other", now));
    }

    [Fact]
    public void Pipeline_WithoutDataGuardSection_ChangesNothing()
    {
        var (pipeline, _, _) = Pipeline("default: allow");
        var call = PolicyKit.Call("forum", "post", """{"text":"AKIAEXAMPLEFAKE00042"}""");
        Assert.Equal(Effect.Allow, pipeline.Decide(call).Effect);
        Assert.Null(call.Findings);
    }
}
