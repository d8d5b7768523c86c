namespace Warden.Core.Identity;

/// <summary>Who holds a credential. Agents call tools; approvers decide held calls; operators administer.</summary>
public enum PrincipalKind : byte
{
    /// <summary>An AI agent: calls tools through the gateway or the decision API. Never approves.</summary>
    Agent = 0,

    /// <summary>A person who writes policy, stops and resumes agents, reads the audit.</summary>
    Operator = 1,

    /// <summary>A person who approves or denies held calls.</summary>
    Approver = 2,
}

/// <summary>A named identity with a credential whose hash lives in the store.</summary>
/// <param name="Kind">What the principal may do.</param>
/// <param name="Name">Unique among principals of the same kind.</param>
/// <param name="Groups">Groups the principal belongs to (agent groups, approver groups).</param>
/// <param name="CreatedAt">When the principal was added.</param>
/// <param name="RevokedAt">When its credential was revoked, if it was.</param>
public sealed record Principal(
    PrincipalKind Kind,
    string Name,
    IReadOnlyList<string> Groups,
    DateTimeOffset CreatedAt,
    DateTimeOffset? RevokedAt = null)
{
    /// <summary>True while the credential may be used.</summary>
    public bool IsActive => RevokedAt is null;
}
