namespace Warden.Core.Approvals;

/// <summary>Where an approval is in its life.</summary>
public enum ApprovalState
{
    /// <summary>Waiting for approvers.</summary>
    Pending,

    /// <summary>Approved; the call may run once (at once in hold mode, on the identical retry in defer mode).</summary>
    Approved,

    /// <summary>An approver denied it.</summary>
    Denied,

    /// <summary>Nobody decided before the timeout, or an approved deferred call was not retried in time.</summary>
    Expired,

    /// <summary>The waiting caller cancelled or disconnected.</summary>
    Withdrawn,

    /// <summary>A stop covering the call voided it.</summary>
    Voided,

    /// <summary>Warden restarted while the caller waited; the call is never run.</summary>
    Abandoned,

    /// <summary>The approved call was released to the tool (exactly once).</summary>
    Executed,
}

/// <summary>How the agent waits for an approval.</summary>
public enum ApprovalMode
{
    /// <summary>The agent's request waits for the decision.</summary>
    Hold,

    /// <summary>The agent is answered at once and retries the identical call after approval.</summary>
    Defer,
}

/// <summary>One approver's approval of a call (two are needed under the two-person rule).</summary>
/// <param name="By">The approver's name.</param>
/// <param name="At">When.</param>
public sealed record ApprovalSignature(string By, DateTimeOffset At);

/// <summary>A data-guard finding shown to approvers, already masked.</summary>
/// <param name="Kind">What was found (aws_access_key, email, ...).</param>
/// <param name="Location">Where (an argument path or a result block).</param>
/// <param name="Confidence">0 to 1.</param>
public sealed record ApprovalFinding(string Kind, string Location, double Confidence);

/// <summary>
/// A call a rule asked a human about: exactly what the approvers see and what may run. Immutable; every change is a
/// new record with a higher <see cref="Revision"/>, written with compare-and-set so no approval decides twice.
/// </summary>
public sealed record ApprovalRecord
{
    /// <summary>Unique id (<c>apr_</c> and 24 hex digits).</summary>
    public required string Id { get; init; }

    /// <summary>The state.</summary>
    public ApprovalState State { get; init; }

    /// <summary>Incremented on every change; the store's compare-and-set key.</summary>
    public int Revision { get; init; }

    /// <summary>How the agent waits.</summary>
    public ApprovalMode Mode { get; init; }

    /// <summary>The agent that made the call.</summary>
    public required string Agent { get; init; }

    /// <summary>The Warden session of the call.</summary>
    public required string Session { get; init; }

    /// <summary>The upstream server.</summary>
    public required string Server { get; init; }

    /// <summary>The tool (or resource, prompt) as the upstream knows it.</summary>
    public required string Tool { get; init; }

    /// <summary>The name the agent used (<c>server__tool</c>).</summary>
    public required string DisplayName { get; init; }

    /// <summary>The arguments as canonical JSON (keys sorted): what approvers see and the digest covers.</summary>
    public required string ArgumentsJson { get; init; }

    /// <summary>SHA-256 of server, tool, arguments and policy version: what an approver binds to.</summary>
    public required string Digest { get; init; }

    /// <summary>SHA-256 of server, tool and arguments alone: what approve-and-remember matches.</summary>
    public required string PatternDigest { get; init; }

    /// <summary>The rule (or limit, or data-guard finding) that asked.</summary>
    public required string Rule { get; init; }

    /// <summary>The rule's reason, for approvers and the agent.</summary>
    public string? Reason { get; init; }

    /// <summary>The policy version the call was decided under.</summary>
    public required string PolicyVersion { get; init; }

    /// <summary>Groups whose members may decide; empty means any approver.</summary>
    public IReadOnlyList<string> ApproverGroups { get; init; } = [];

    /// <summary>Whether two different approvers must approve.</summary>
    public bool TwoPerson { get; init; }

    /// <summary>Approvals given so far (one before the second under the two-person rule).</summary>
    public IReadOnlyList<ApprovalSignature> Approvals { get; init; } = [];

    /// <summary>Data-guard findings, masked.</summary>
    public IReadOnlyList<ApprovalFinding> Findings { get; init; } = [];

    /// <summary>When it was asked.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When a pending approval times out (and, once approved in defer mode, when the retry window closes).</summary>
    public DateTimeOffset ExpiresAt { get; init; }

    /// <summary>Who decided (an approver, <c>client user (unverified)</c>, <c>remembered:ID</c>, or <c>warden</c>).</summary>
    public string? DecidedBy { get; init; }

    /// <summary>When it was decided.</summary>
    public DateTimeOffset? DecidedAt { get; init; }

    /// <summary>The approver's reason (sent to the agent on denial), or why Warden ended it.</summary>
    public string? DecisionReason { get; init; }

    /// <summary>The remembered grant made with the approval, if any.</summary>
    public string? RememberId { get; init; }

    /// <summary>Until when that grant holds.</summary>
    public DateTimeOffset? RememberUntil { get; init; }

    /// <summary>The process instance holding the caller (hold mode), to find callers lost in a restart.</summary>
    public string Owner { get; init; } = "";

    /// <summary>True once a deferred outcome (denial, expiry) was told to the retrying agent.</summary>
    public bool Delivered { get; init; }

    /// <summary>True while nothing more can happen to it.</summary>
    public bool IsFinal => State is not (ApprovalState.Pending or ApprovalState.Approved);
}

/// <summary>
/// Approve-and-remember: the same tool with the same arguments, for the same agent, runs without asking until
/// <see cref="Until"/>, unless revoked. Recorded, listed and revocable.
/// </summary>
public sealed record RememberedGrant
{
    /// <summary>Unique id (<c>rem_</c> and 24 hex digits).</summary>
    public required string Id { get; init; }

    /// <summary>The agent it applies to.</summary>
    public required string Agent { get; init; }

    /// <summary>The server.</summary>
    public required string Server { get; init; }

    /// <summary>The tool.</summary>
    public required string Tool { get; init; }

    /// <summary>The pattern: digest of server, tool and arguments.</summary>
    public required string PatternDigest { get; init; }

    /// <summary>The arguments remembered, canonical JSON.</summary>
    public required string ArgumentsJson { get; init; }

    /// <summary>The rule that asked.</summary>
    public required string Rule { get; init; }

    /// <summary>The approver who made it.</summary>
    public required string By { get; init; }

    /// <summary>The approval it came from.</summary>
    public required string ApprovalId { get; init; }

    /// <summary>When it was made.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it ends.</summary>
    public DateTimeOffset Until { get; init; }

    /// <summary>When it was revoked, if it was.</summary>
    public DateTimeOffset? RevokedAt { get; init; }

    /// <summary>Who revoked it.</summary>
    public string? RevokedBy { get; init; }

    /// <summary>True when it applies at <paramref name="now"/>.</summary>
    public bool IsActive(DateTimeOffset now) => RevokedAt is null && now < Until;
}

/// <summary>Names of states and modes as written in the API, the store and the audit.</summary>
public static class ApprovalNames
{
    /// <summary>The lower-case name of a state.</summary>
    public static string Name(ApprovalState state) => state switch
    {
        ApprovalState.Pending => "pending",
        ApprovalState.Approved => "approved",
        ApprovalState.Denied => "denied",
        ApprovalState.Expired => "expired",
        ApprovalState.Withdrawn => "withdrawn",
        ApprovalState.Voided => "voided",
        ApprovalState.Abandoned => "abandoned",
        _ => "executed",
    };

    /// <summary>Parses a state name; null when unknown.</summary>
    public static ApprovalState? ParseState(string? name) => name switch
    {
        "pending" => ApprovalState.Pending,
        "approved" => ApprovalState.Approved,
        "denied" => ApprovalState.Denied,
        "expired" => ApprovalState.Expired,
        "withdrawn" => ApprovalState.Withdrawn,
        "voided" => ApprovalState.Voided,
        "abandoned" => ApprovalState.Abandoned,
        "executed" => ApprovalState.Executed,
        _ => null,
    };

    /// <summary>The lower-case name of a mode.</summary>
    public static string Name(ApprovalMode mode) => mode == ApprovalMode.Hold ? "hold" : "defer";
}
