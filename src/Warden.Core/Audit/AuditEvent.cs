namespace Warden.Core.Audit;

/// <summary>
/// One record of the audit chain. Everything Warden does that matters later (a call received and decided, the
/// intent to forward it, its outcome, policy loads, administration) is one event; the chain of events, in
/// <see cref="Seq"/> order, is the order of record for everything else.
/// </summary>
/// <remarks>
/// Events are built with <see cref="Seq"/> 0 and empty hashes; the store's single writer assigns the sequence
/// number, links <see cref="PrevHash"/> to the previous event and computes <see cref="Hash"/> over the canonical
/// encoding (<see cref="AuditCanonical"/>). Strings are stored exactly as given; <see cref="Time"/> is kept in UTC
/// to 100 ns. See docs/audit.md for the meaning of each field per kind.
/// </remarks>
public sealed record AuditEvent
{
    /// <summary>Position in the chain, from 1, without gaps.</summary>
    public long Seq { get; init; }

    /// <summary>When it happened (UTC, 100 ns precision).</summary>
    public DateTimeOffset Time { get; init; }

    /// <summary>What happened; see <see cref="AuditKinds"/>.</summary>
    public required string Kind { get; init; }

    /// <summary>Who did it: <c>agent:NAME</c>, <c>operator:NAME</c>, <c>warden</c>, ...</summary>
    public required string Actor { get; init; }

    /// <summary>The agent the event concerns, if any.</summary>
    public string? Agent { get; init; }

    /// <summary>The Warden session the event concerns, if any.</summary>
    public string? Session { get; init; }

    /// <summary>Identifies one call across its events (decision, intent, outcome).</summary>
    public string? Call { get; init; }

    /// <summary>The upstream server.</summary>
    public string? Server { get; init; }

    /// <summary>The tool name (or resource URI, prompt name) as the upstream knows it.</summary>
    public string? Tool { get; init; }

    /// <summary>The decision's effect: <c>allow</c>, <c>deny</c>, <c>ask</c>, <c>shadow</c> or <c>error</c>.</summary>
    public string? Effect { get; init; }

    /// <summary>The rule (or fixed stage) that decided.</summary>
    public string? Rule { get; init; }

    /// <summary>The policy version the decision was made under.</summary>
    public string? PolicyVersion { get; init; }

    /// <summary>The decision context a replay needs, as compact JSON (groups, classes, labels, counts, operation).</summary>
    public string? Context { get; init; }

    /// <summary>The arguments as JSON, with masked values replaced by their keyed digest (<c>hmac:...</c>).</summary>
    public string? Arguments { get; init; }

    /// <summary>Keyed digest of the result (<c>hmac:...</c>), never the result itself.</summary>
    public string? ResultDigest { get; init; }

    /// <summary>How the call ended: <c>ok</c>, <c>tool_error</c>, <c>error</c>, <c>cancelled</c>, <c>not_forwarded</c>.</summary>
    public string? Outcome { get; init; }

    /// <summary>How long the call took at the upstream, in microseconds.</summary>
    public long? DurationMicros { get; init; }

    /// <summary>Anything else, as compact JSON or text (reason, error message, change details).</summary>
    public string? Detail { get; init; }

    /// <summary>SHA-256 of the previous event's canonical encoding (32 zero bytes for the first event).</summary>
    public ReadOnlyMemory<byte> PrevHash { get; init; }

    /// <summary>SHA-256 of this event's canonical encoding, which includes <see cref="PrevHash"/>.</summary>
    public ReadOnlyMemory<byte> Hash { get; init; }
}

/// <summary>The newest event of a chain: what a verifier compares the end of the log with.</summary>
/// <param name="Seq">The last sequence number, 0 for an empty chain.</param>
/// <param name="Hash">Its hash (32 zero bytes for an empty chain).</param>
public readonly record struct AuditHead(long Seq, ReadOnlyMemory<byte> Hash)
{
    /// <summary>The head of an empty chain.</summary>
    public static AuditHead Empty => new(0, AuditCanonical.GenesisHash);
}

/// <summary>Kinds of audit events.</summary>
public static class AuditKinds
{
    /// <summary>A call was received and decided (carries the decision, its context and the arguments).</summary>
    public const string Decision = "decision";

    /// <summary>The intent: the call is about to leave for the upstream. Durable before it does.</summary>
    public const string CallForwarded = "call.forwarded";

    /// <summary>The upstream answered.</summary>
    public const string CallCompleted = "call.completed";

    /// <summary>The upstream failed or answered with a tool error.</summary>
    public const string CallFailed = "call.failed";

    /// <summary>The call was cancelled (by the agent, a timeout or a stop), or not forwarded after its intent was written.</summary>
    public const string CallCancelled = "call.cancelled";

    /// <summary>A policy version came into force.</summary>
    public const string PolicyLoaded = "policy.loaded";

    /// <summary>A policy reload was rejected; the previous version stays.</summary>
    public const string PolicyRejected = "policy.rejected";

    /// <summary>An upstream's tool definitions changed.</summary>
    public const string ToolChanged = "tool.changed";

    /// <summary>A principal (agent, operator, approver) was added.</summary>
    public const string PrincipalAdded = "principal.added";

    /// <summary>A principal was revoked.</summary>
    public const string PrincipalRevoked = "principal.revoked";

    /// <summary>An operator or approver changed state through the API.</summary>
    public const string AdminRequest = "admin.request";

    /// <summary>The gateway started.</summary>
    public const string WardenStarted = "warden.started";

    /// <summary>Calls were forwarded unrecorded under <c>audit.on_failure: allow</c> while the audit could not be written.</summary>
    public const string AuditGap = "audit.gap";

    /// <summary>Prefix of stop, resume and pause events (<c>agent.stopped</c>, ...).</summary>
    public const string AgentPrefix = "agent.";

    /// <summary>Prefix of approval events (<c>approval.requested</c>, ...).</summary>
    public const string ApprovalPrefix = "approval.";
}
