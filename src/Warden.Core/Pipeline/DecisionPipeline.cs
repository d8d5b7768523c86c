namespace Warden.Core.Pipeline;

/// <summary>
/// One stage of the decision pipeline. A stage either lets the call continue (returns null) or
/// decides it (returns a decision, which ends the chain). Stages are synchronous and do no I/O:
/// whatever state they need (stops, limits, policy) is kept in memory and fed by the edges.
/// </summary>
public interface IDecisionStage
{
    /// <summary>The stage's name, used in errors and explanations.</summary>
    string Name { get; }

    /// <summary>Decides the call, or returns null to pass it on.</summary>
    Decision? Evaluate(CallContext call);
}

/// <summary>
/// A stage that also sees the decision once a later stage made it, and may make it stricter (the data guard
/// turns an allow into an ask or a deny when the arguments carry what policy keeps in). The pipeline never lets a
/// filter weaken a decision, and never passes it an error decision.
/// </summary>
public interface IDecisionFilter
{
    /// <summary>The filter's name, used in errors.</summary>
    string Name { get; }

    /// <summary>Returns the decision to use: the one given, or a stricter one.</summary>
    Decision Filter(CallContext call, Decision decision);
}

/// <summary>
/// The ordered chain every call passes: stop check, pin check, policy, limits, data guard.
/// The last stage is the policy, which always decides; a chain with no deciding stage denies.
/// </summary>
public sealed class DecisionPipeline
{
    private readonly IDecisionStage[] _stages;
    private readonly IDecisionFilter[] _filters;
    private readonly Func<string> _policyVersion;

    /// <summary>Creates a pipeline over stages in the order given.</summary>
    /// <param name="stages">The stages, first to last.</param>
    /// <param name="policyVersion">Reads the policy version in force, for decisions no rule made.</param>
    public DecisionPipeline(IEnumerable<IDecisionStage> stages, Func<string> policyVersion)
    {
        _stages = [.. stages];
        _filters = [.. _stages.OfType<IDecisionFilter>()];
        _policyVersion = policyVersion;
    }

    /// <summary>The stages in order.</summary>
    public IReadOnlyList<IDecisionStage> Stages => _stages;

    /// <summary>Decides a call. Never throws: a stage that throws yields an error decision that denies.</summary>
    public Decision Decide(CallContext call)
    {
        foreach (var stage in _stages)
        {
            Decision? decision;
            try
            {
                decision = stage.Evaluate(call);
            }
            catch (Exception ex)
            {
                // Fail closed: a bug or fault in any stage must never let a call through.
                return Decision.Error(stage.Name, $"{stage.Name} failed: {ex.Message}", SafeVersion());
            }

            if (decision is { } d)
            {
                return _filters.Length == 0 || d.IsError ? d : Filtered(call, d);
            }
        }

        return new Decision(Effect.Deny, "no-decision", "no stage decided this call", SafeVersion());
    }

    private Decision Filtered(CallContext call, Decision decision)
    {
        foreach (var filter in _filters)
        {
            Decision next;
            try
            {
                next = filter.Filter(call, decision);
            }
            catch (Exception ex)
            {
                return Decision.Error(filter.Name, $"{filter.Name} failed: {ex.Message}", decision.PolicyVersion);
            }

            // Stricter only: deny over ask over shadow over allow; a filter's error always stands.
            if (next.IsError || next.Effect > decision.Effect)
            {
                decision = next;
            }

            if (decision.IsError)
            {
                return decision;
            }
        }

        return decision;
    }

    private string SafeVersion()
    {
        try
        {
            return _policyVersion();
        }
        catch
        {
            return "unknown";
        }
    }
}
