using Warden.Core.Text;

namespace Warden.Core.Policy;

/// <summary>A policy as written, before compilation: one file or the merge of a folder's files.</summary>
public sealed class PolicyDocument
{
    /// <summary>The effect for calls no rule matches.</summary>
    public Effect Default { get; set; } = Effect.Deny;

    /// <summary>Where <see cref="Default"/> was set.</summary>
    public SourceSpan DefaultAt { get; set; }

    /// <summary>Agents' groups, by agent name.</summary>
    public Dictionary<string, AgentEntry> Agents { get; } = new(StringComparer.Ordinal);

    /// <summary>Named lists.</summary>
    public Dictionary<string, ListEntry> Lists { get; } = new(StringComparer.Ordinal);

    /// <summary>Class assignments: server, tool glob, classes.</summary>
    public List<ClassEntry> Classes { get; } = [];

    /// <summary>Rules in file order (files in name order).</summary>
    public List<RuleEntry> Rules { get; } = [];

    /// <summary>Limits (velocity, budgets, breakers); enforced by the limits stage.</summary>
    public List<Limits.LimitRule> Limits { get; } = [];

    /// <summary>The files the document was read from.</summary>
    public List<string> Files { get; } = [];
}

/// <summary>Where something was written.</summary>
public readonly record struct SourceSpan(string File, int Line, int Column)
{
    /// <summary>Formats as file:line:column.</summary>
    public override string ToString() => $"{File}:{Line}:{Column}";
}

/// <summary>An agent's entry.</summary>
/// <param name="Name">The agent.</param>
/// <param name="Groups">Its groups.</param>
/// <param name="At">Where it is written.</param>
/// <param name="TrustClientConfirmation">True when the person at the agent's MCP client may confirm its calls
/// (approver group <c>client_user</c>); for single-user desktop setups, never for destructive or outbound calls.</param>
public sealed record AgentEntry(string Name, IReadOnlyList<string> Groups, SourceSpan At, bool TrustClientConfirmation = false);

/// <summary>A named list: values inline or read from a file.</summary>
public sealed record ListEntry(string Name, IReadOnlyList<string> Values, SourceSpan At);

/// <summary>Classes assigned to tools matching a glob on a server.</summary>
public sealed record ClassEntry(string Server, Glob Tool, ToolClasses Classes, SourceSpan At);

/// <summary>How a held call waits.</summary>
public enum AskMode
{
    /// <summary>The agent's request waits.</summary>
    Hold,

    /// <summary>The agent is answered at once and retries after approval.</summary>
    Defer,
}

/// <summary>A rule as written.</summary>
public sealed class RuleEntry
{
    /// <summary>Unique id, named in decisions and the audit.</summary>
    public required string Id { get; init; }

    /// <summary>What the rule is for.</summary>
    public string? Description { get; init; }

    /// <summary>Server globs (any when empty).</summary>
    public IReadOnlyList<Glob> Servers { get; init; } = [];

    /// <summary>Tool, prompt or resource-URI globs (any when empty).</summary>
    public IReadOnlyList<Glob> Targets { get; init; } = [];

    /// <summary>Classes, any of which must be present (any when None).</summary>
    public ToolClasses Classes { get; init; }

    /// <summary>Agent names (any when empty).</summary>
    public IReadOnlyList<string> AgentNames { get; init; } = [];

    /// <summary>Agent groups, any of which must be held (any when empty).</summary>
    public IReadOnlyList<string> Groups { get; init; } = [];

    /// <summary>Operations (tools/call when empty).</summary>
    public IReadOnlyList<McpOperation> Operations { get; init; } = [McpOperation.ToolCall];

    /// <summary>The condition, in the CEL subset; null for none.</summary>
    public string? When { get; init; }

    /// <summary>Where the condition starts.</summary>
    public SourceSpan WhenAt { get; init; }

    /// <summary>The effect when the rule applies.</summary>
    public Effect Effect { get; init; }

    /// <summary>The message an agent receives on deny.</summary>
    public string? Message { get; init; }

    /// <summary>Approver groups for ask.</summary>
    public IReadOnlyList<string> Approvers { get; init; } = [];

    /// <summary>How long an ask waits before it denies.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>How an ask waits.</summary>
    public AskMode? Mode { get; init; }

    /// <summary>Whether two different approvers are needed.</summary>
    public bool TwoPerson { get; init; }

    /// <summary>Where the rule starts.</summary>
    public SourceSpan At { get; init; }
}

/// <summary>Effect names as written in policy.</summary>
public static class EffectNames
{
    /// <summary>Parses allow, deny, ask, shadow.</summary>
    public static Effect? Parse(string? s) => s switch
    {
        "allow" => Effect.Allow,
        "deny" => Effect.Deny,
        "ask" => Effect.Ask,
        "shadow" => Effect.Shadow,
        _ => null,
    };

    /// <summary>The policy name of an effect.</summary>
    public static string Name(Effect e) => e switch
    {
        Effect.Allow => "allow",
        Effect.Deny => "deny",
        Effect.Ask => "ask",
        _ => "shadow",
    };

    /// <summary>Operation names as written in rules' <c>match.method</c>.</summary>
    public static McpOperation? ParseOperation(string s) => s switch
    {
        "tools/call" or "tools" => McpOperation.ToolCall,
        "resources/read" or "resources" => McpOperation.ResourceRead,
        "prompts/get" or "prompts" => McpOperation.PromptGet,
        "sampling/createMessage" or "sampling" => McpOperation.Sampling,
        "elicitation/create" or "elicitation" => McpOperation.Elicitation,
        _ => null,
    };
}
