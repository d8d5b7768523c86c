using Warden.Core.Pipeline;

namespace Warden.Core.Policy;

/// <summary>
/// The policy in force, swapped atomically. A call reads the reference once and is decided wholly under
/// that version; a rejected reload leaves the last good policy in place.
/// </summary>
public sealed class PolicyHolder
{
    private volatile CompiledPolicy? _current;

    /// <summary>The policy in force; null until a valid one was loaded.</summary>
    public CompiledPolicy? Current => _current;

    /// <summary>The version in force, or <c>none</c>.</summary>
    public string Version => _current?.Version ?? "none";

    /// <summary>The last rejected load, while it is newer than the policy in force.</summary>
    public PolicyRejection? LastRejection { get; private set; }

    /// <summary>When the policy in force was loaded.</summary>
    public DateTimeOffset? LoadedAt { get; private set; }

    /// <summary>Puts a policy in force.</summary>
    public void Swap(CompiledPolicy policy, DateTimeOffset at)
    {
        _current = policy;
        LoadedAt = at;
        LastRejection = null;
    }

    /// <summary>Records a rejected load; the policy in force stays.</summary>
    public void Reject(PolicyRejection rejection) => LastRejection = rejection;
}

/// <summary>A policy load that was refused.</summary>
/// <param name="At">When.</param>
/// <param name="Problems">The errors, formatted file:line:column.</param>
public sealed record PolicyRejection(DateTimeOffset At, IReadOnlyList<string> Problems);

/// <summary>The policy stage: the last stage of the pipeline, which always decides.</summary>
public sealed class PolicyStage(PolicyHolder holder) : IDecisionStage
{
    /// <inheritdoc />
    public string Name => "policy";

    /// <inheritdoc />
    public Decision? Evaluate(CallContext call)
    {
        // Read once: the whole decision uses one version even if a reload lands meanwhile.
        var policy = holder.Current;
        return policy is null
            ? Decision.Error("policy", "no valid policy is loaded; Warden refuses calls until one is", "none")
            : policy.Decide(call);
    }
}
