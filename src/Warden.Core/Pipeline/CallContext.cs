using System.Text.Json;
using Warden.Core.Conditions;

namespace Warden.Core.Pipeline;

/// <summary>The agent behind a call, as its credential established it. Nothing the agent says about itself counts.</summary>
/// <param name="Name">The agent's name.</param>
/// <param name="Groups">The groups policy gives the agent.</param>
public sealed record AgentIdentity(string Name, IReadOnlyList<string> Groups)
{
    /// <summary>An agent with no groups.</summary>
    public AgentIdentity(string name) : this(name, []) { }
}

/// <summary>
/// Everything the decision pipeline knows about one call. Built once per call by a transport;
/// stages read it and never perform I/O.
/// </summary>
public sealed class CallContext : IConditionContext
{
    private static readonly IReadOnlyList<string>[] ClassNames = [.. Enumerable.Range(0, 16).Select(i => ToolClassifier.Names((ToolClasses)i))];
    private static readonly IReadOnlyDictionary<string, long> NoCounts = new Dictionary<string, long>();

    /// <summary>The authenticated agent.</summary>
    public required AgentIdentity Agent { get; init; }

    /// <summary>
    /// The Warden session: the agent plus the transport's session id, or the agent alone where the
    /// transport has none (stateless HTTP, the decision API without a session).
    /// </summary>
    public required string SessionId { get; init; }

    /// <summary>What kind of MCP operation this is.</summary>
    public required McpOperation Operation { get; init; }

    /// <summary>The upstream server's configured name.</summary>
    public required string Server { get; init; }

    /// <summary>The tool name as the upstream knows it, the resource URI, or the prompt name.</summary>
    public required string Target { get; init; }

    /// <summary>The arguments exactly as received (tool arguments, prompt arguments); null when there are none.</summary>
    public IReadOnlyDictionary<string, JsonElement>? Arguments { get; init; }

    /// <summary>The tool's classes as derived from its annotations (policy may replace them).</summary>
    public ToolClasses AnnotatedClasses { get; init; }

    /// <summary>Labels the agent's session carries (confidential, personal, ...).</summary>
    public IReadOnlyCollection<string> SessionLabels { get; init; } = [];

    /// <summary>How the call reached Warden: <c>mcp</c> (forwarded by the gateway) or <c>api</c> (the decision API; the agent performs it).</summary>
    public string Channel { get; init; } = "mcp";

    /// <summary>When the call arrived, from the injected clock.</summary>
    public DateTimeOffset ReceivedAt { get; init; }

    /// <summary>The tool name as the agent saw it (<c>server__tool</c>), for messages.</summary>
    public string DisplayName => Operation == McpOperation.ToolCall ? Server + "__" + Target : Server + ":" + Target;

    /// <summary>Counts of earlier calls in the session, by name (see docs/policy.md).</summary>
    public IReadOnlyDictionary<string, long> Counts { get; init; } = NoCounts;

    // What conditions see is set by the policy just before it evaluates them: the agent's groups from its
    // credential and from policy, and the tool's classes after policy's overrides.
    internal IReadOnlyList<string>? EffectiveGroups { get; set; }

    internal ToolClasses EffectiveClasses { get; set; }

    /// <summary>The tool's classes as policy decided them (annotations with policy's overrides), or as annotated before policy ran.</summary>
    public ToolClasses Classes => EffectiveClasses == ToolClasses.None ? AnnotatedClasses : EffectiveClasses;

    string IConditionContext.AgentName => Agent.Name;

    IReadOnlyList<string> IConditionContext.AgentGroups => EffectiveGroups ?? Agent.Groups;

    string IConditionContext.Server => Server;

    string IConditionContext.Tool => Target;

    IReadOnlyList<string> IConditionContext.ToolClasses => ClassNames[(int)EffectiveClasses & 15];

    DateTimeOffset IConditionContext.Now => ReceivedAt;
}
