namespace Warden.Core.Pipeline;

/// <summary>
/// The outcome of deciding one call. A value, never an exception: a failure while deciding is a
/// decision too (<see cref="IsError"/>), and it always denies.
/// </summary>
/// <param name="Effect">What happens to the call.</param>
/// <param name="RuleId">The rule that decided, or a fixed stage name such as <c>default</c>.</param>
/// <param name="Reason">Why, in words the agent's model and a human can act on.</param>
/// <param name="PolicyVersion">The policy version the decision was made under.</param>
/// <param name="IsError">True when deciding failed; <see cref="Effect"/> is then <see cref="Effect.Deny"/>.</param>
public readonly record struct Decision(Effect Effect, string RuleId, string? Reason, string PolicyVersion, bool IsError = false)
{
    /// <summary>A failure while deciding: denies, and is recorded as <c>error</c>, distinct from a rule's deny.</summary>
    public static Decision Error(string stage, string cause, string policyVersion) =>
        new(Effect.Deny, stage, cause, policyVersion, IsError: true);

    /// <summary>The message an agent receives when the call is not forwarded.</summary>
    public string AgentMessage => IsError
        ? $"denied: Warden could not decide this call ({Reason})"
        : Effect switch
        {
            // A stop's reason is already the whole message: "stopped by NAME at TIME: reason".
            Effect.Deny when RuleId is "stop" or "pause" => Reason ?? "stopped",
            Effect.Deny => Reason is { Length: > 0 } ? $"denied by rule {RuleId}: {Reason}" : $"denied by rule {RuleId}",
            Effect.Ask => $"held by rule {RuleId}: {Reason}",
            Effect.Shadow => $"simulated by rule {RuleId}: {Reason}",
            _ => "allowed",
        };
}
