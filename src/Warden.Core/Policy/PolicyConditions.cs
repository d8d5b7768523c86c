using Warden.Core.Conditions;
using Warden.Core.Pipeline;
using Warden.Core.Text;

namespace Warden.Core.Policy;

/// <summary>Binds rule conditions to the CEL-subset condition language.</summary>
public static class PolicyConditions
{
    /// <summary>The factory policy compilation uses: compiles once at load, reporting problems at their line and column in the policy file.</summary>
    public static ConditionFactory Factory { get; } = (source, at, lists, diagnostics) =>
    {
        var compiler = new ConditionCompiler(new ConditionEnvironment { Lists = lists });
        var result = compiler.Compile(source);
        foreach (var d in result.Diagnostics)
        {
            // Conditions on one line are positioned relative to the 'when:' value.
            var line = at.Line + d.Line - 1;
            var column = d.Line == 1 ? at.Column + d.Column - 1 : d.Column;
            diagnostics.Add(new SourceDiagnostic(at.File, line, column, "condition: " + d.Message, d.Hint));
        }

        return result.Condition is { } condition ? new CelRuleCondition(condition) : null;
    };

    /// <summary>Sets what conditions see of the call: the tool's effective classes and the agent's groups from its credential and from policy.</summary>
    internal static void Prepare(CallContext call, ToolClasses classes, IReadOnlyList<string> policyGroups)
    {
        call.EffectiveClasses = classes;
        call.EffectiveGroups = policyGroups.Count == 0 ? call.Agent.Groups
            : call.Agent.Groups.Count == 0 ? policyGroups
            : [.. call.Agent.Groups.Union(policyGroups, StringComparer.Ordinal)];
    }

    internal sealed class CelRuleCondition(CompiledCondition condition) : IRuleCondition
    {
        /// <summary>The compiled condition, whose predicate form decisions try first.</summary>
        internal CompiledCondition Compiled => condition;

        public ConditionVerdict Evaluate(CallContext call, ToolClasses classes, IReadOnlyList<string> policyGroups)
        {
            Prepare(call, classes, policyGroups);
            return Evaluate(call, null);
        }

        /// <summary>For a decision that already called <see cref="Prepare"/>, sharing argument reads through <paramref name="cache"/>.</summary>
        internal ConditionVerdict Evaluate(CallContext call, ArgCache? cache)
        {
            var outcome = condition.Evaluate(new ConditionInput(call.Arguments, call) { Cache = cache });
            return outcome.Kind switch
            {
                ConditionOutcomeKind.True => ConditionVerdict.True,
                ConditionOutcomeKind.False => ConditionVerdict.False,
                _ => new ConditionVerdict(false, outcome.ErrorMessage ?? "evaluation error"),
            };
        }
    }
}
