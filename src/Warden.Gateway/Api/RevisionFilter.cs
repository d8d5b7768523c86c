using Warden.Core.Approvals;

namespace Warden.Gateway.Api;

/// <summary>Lets each approval's changes through once and in increasing revision order (one per stream; single reader).</summary>
internal sealed class RevisionFilter
{
    // A stream lives as long as a dashboard tab: far fewer approvals than this. Past it, forgetting the oldest
    // matters less than growing without bound.
    private const int MaxTracked = 100_000;

    private readonly Dictionary<string, int> _last = new(StringComparer.Ordinal);

    /// <summary>True when <paramref name="approval"/> is newer than what this stream already sent for it.</summary>
    public bool IsNewer(ApprovalRecord approval)
    {
        if (_last.TryGetValue(approval.Id, out var last) && approval.Revision <= last)
        {
            return false;
        }

        if (_last.Count >= MaxTracked)
        {
            _last.Clear();
        }

        _last[approval.Id] = approval.Revision;
        return true;
    }
}
