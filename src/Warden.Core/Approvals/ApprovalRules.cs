namespace Warden.Core.Approvals;

/// <summary>What an approver asks for.</summary>
public enum ApprovalVerdict
{
    /// <summary>Let the call run.</summary>
    Approve,

    /// <summary>Refuse it, with a reason the agent receives.</summary>
    Deny,
}

/// <summary>Who is deciding, as their credential established it.</summary>
/// <param name="Kind">agent, operator or approver.</param>
/// <param name="Name">The principal's name.</param>
/// <param name="Groups">The principal's groups.</param>
public sealed record Decider(string Kind, string Name, IReadOnlyList<string> Groups);

/// <summary>The result of asking to decide: the new record, or why not.</summary>
/// <param name="Updated">The record to write (compare-and-set against the one read), or null when refused.</param>
/// <param name="Error">Why the request was refused.</param>
/// <param name="Status">403 (not allowed), 409 (not pending, changed, expired), 400 (bad request); 200 when accepted.</param>
public readonly record struct ApprovalChange(ApprovalRecord? Updated, string? Error, int Status)
{
    internal static ApprovalChange Refuse(int status, string error) => new(null, error, status);
}

/// <summary>
/// The rules of deciding an approval, with no I/O: who may decide, what they bind to, when it is too late, and the
/// two-person rule. The caller writes <see cref="ApprovalChange.Updated"/> with compare-and-set on the revision it
/// read, so two approvers deciding at once cannot both succeed.
/// </summary>
public static class ApprovalRules
{
    /// <summary>The approver group naming the person at the MCP client (elicitation), unverified.</summary>
    public const string ClientUserGroup = "client_user";

    /// <summary>How the person at the client appears as the decider.</summary>
    public const string ClientUser = "client user (unverified)";

    /// <summary>The longest approve-and-remember Warden accepts.</summary>
    public static readonly TimeSpan MaxRemember = TimeSpan.FromDays(7);

    /// <summary>Checks and applies a decision.</summary>
    /// <param name="current">The record as read.</param>
    /// <param name="decider">Who decides.</param>
    /// <param name="verdict">Approve or deny.</param>
    /// <param name="digest">The digest the decider was shown; must equal the record's.</param>
    /// <param name="reason">The decider's reason (required to deny).</param>
    /// <param name="rememberFor">Approve-and-remember for this long (approve only).</param>
    /// <param name="now">The clock.</param>
    /// <param name="newGrantId">Makes an id for a remembered grant.</param>
    public static ApprovalChange Decide(ApprovalRecord current, Decider decider, ApprovalVerdict verdict, string? digest, string? reason, TimeSpan? rememberFor, DateTimeOffset now, Func<string> newGrantId)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(decider);
        if (decider.Kind != "approver")
        {
            return ApprovalChange.Refuse(403, $"only approvers decide approvals; '{decider.Name}' is an {decider.Kind}");
        }

        if (string.Equals(decider.Name, current.Agent, StringComparison.Ordinal))
        {
            return ApprovalChange.Refuse(403, $"'{decider.Name}' made this call and cannot decide it");
        }

        if (!MayDecide(current, decider))
        {
            return ApprovalChange.Refuse(403, $"approval {current.Id} needs a member of {string.Join(" or ", current.ApproverGroups)}");
        }

        if (current.State != ApprovalState.Pending)
        {
            return ApprovalChange.Refuse(409, $"approval {current.Id} is {ApprovalNames.Name(current.State)}, not pending");
        }

        if (now >= current.ExpiresAt)
        {
            return ApprovalChange.Refuse(409, $"approval {current.Id} expired at {current.ExpiresAt:u}");
        }

        if (string.IsNullOrEmpty(digest))
        {
            return ApprovalChange.Refuse(400, "digest is required: send the digest of the call you were shown");
        }

        if (!string.Equals(digest, current.Digest, StringComparison.OrdinalIgnoreCase))
        {
            return ApprovalChange.Refuse(409, $"approval {current.Id} is for a different call than the one you saw (digest mismatch); look again");
        }

        if (verdict == ApprovalVerdict.Deny)
        {
            if (string.IsNullOrWhiteSpace(reason))
            {
                return ApprovalChange.Refuse(400, "a denial needs a reason: the agent receives it");
            }

            if (rememberFor is not null)
            {
                return ApprovalChange.Refuse(400, "remember_for applies to approvals only");
            }

            return new(current with
            {
                State = ApprovalState.Denied,
                Revision = current.Revision + 1,
                DecidedBy = decider.Name,
                DecidedAt = now,
                DecisionReason = reason.Trim(),
            }, null, 200);
        }

        if (rememberFor is { } span && (span <= TimeSpan.Zero || span > MaxRemember))
        {
            return ApprovalChange.Refuse(400, $"remember_for must be between 1 second and {MaxRemember.TotalDays:0} days");
        }

        if (current.Approvals.Any(a => a.By == decider.Name))
        {
            return ApprovalChange.Refuse(409, $"'{decider.Name}' already approved {current.Id}; the two-person rule needs another approver");
        }

        var signatures = current.Approvals.Append(new ApprovalSignature(decider.Name, now)).ToArray();
        if (current.TwoPerson && signatures.Length < 2)
        {
            return new(current with { Revision = current.Revision + 1, Approvals = signatures }, null, 200);
        }

        return new(current with
        {
            State = ApprovalState.Approved,
            Revision = current.Revision + 1,
            Approvals = signatures,
            DecidedBy = decider.Name,
            DecidedAt = now,
            DecisionReason = string.IsNullOrWhiteSpace(reason) ? null : reason.Trim(),
            RememberId = rememberFor is null ? null : newGrantId(),
            RememberUntil = rememberFor is { } r ? now + r : null,
        }, null, 200);
    }

    /// <summary>True when the decider is in one of the record's approver groups (or it names none).</summary>
    public static bool MayDecide(ApprovalRecord record, Decider decider)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(decider);
        var people = record.ApproverGroups.Where(g => g != ClientUserGroup).ToArray();
        if (record.ApproverGroups.Count > 0 && people.Length == 0)
        {
            // Only the person at the client may confirm this one.
            return false;
        }

        return people.Length == 0 || people.Any(decider.Groups.Contains);
    }

    /// <summary>The remembered grant an approval made, if it made one.</summary>
    public static RememberedGrant? GrantOf(ApprovalRecord approved) =>
        approved is { State: ApprovalState.Approved, RememberId: { } id, RememberUntil: { } until, DecidedAt: { } at }
            ? new RememberedGrant
            {
                Id = id,
                Agent = approved.Agent,
                Server = approved.Server,
                Tool = approved.Tool,
                PatternDigest = approved.PatternDigest,
                ArgumentsJson = approved.ArgumentsJson,
                Rule = approved.Rule,
                By = approved.DecidedBy ?? "",
                ApprovalId = approved.Id,
                CreatedAt = at,
                Until = until,
            }
            : null;

    /// <summary>Ends a pending or approved record for a reason of Warden's (timeout, stop, withdrawal, restart).</summary>
    public static ApprovalRecord End(ApprovalRecord current, ApprovalState state, string why, DateTimeOffset now) => current with
    {
        State = state,
        Revision = current.Revision + 1,
        DecidedBy = current.DecidedBy ?? "warden",
        DecidedAt = current.DecidedAt ?? now,
        DecisionReason = current.State == ApprovalState.Pending ? why : current.DecisionReason,
    };

    /// <summary>Marks an approved record as released to the tool; compare-and-set makes this happen once.</summary>
    public static ApprovalRecord Execute(ApprovalRecord approved) => approved with { State = ApprovalState.Executed, Revision = approved.Revision + 1 };
}
