namespace Warden.Gateway.Approvals;

/// <summary>Defaults for approvals where the rule says nothing (see docs/approvals.md).</summary>
public sealed class ApprovalOptions
{
    /// <summary>How long a pending approval waits before it denies (and how long an approved deferred call may be retried).</summary>
    public TimeSpan DefaultTimeout { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>How agents wait by default: hold, since the gateway can keep the request open and clients that give up
    /// early are better served by a rule's <c>mode: defer</c>.</summary>
    public Core.Approvals.ApprovalMode DefaultMode { get; init; } = Core.Approvals.ApprovalMode.Hold;

    /// <summary>Pending approvals one agent may have at once; calls over it are denied (flood control).</summary>
    public int MaxPendingPerAgent { get; init; } = 20;

    /// <summary>How often a held call's agent hears that it is still waiting.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often timed-out approvals and callers lost in a restart are swept.</summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromSeconds(2);
}
