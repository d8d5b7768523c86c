using Warden.Core.Text;

namespace Warden.Core.Policy;

/// <summary>Binds rule conditions to the condition language.</summary>
public static class PolicyConditions
{
    /// <summary>The factory policy compilation uses.</summary>
    public static ConditionFactory Factory { get; } = (source, at, lists, diagnostics) =>
    {
        diagnostics.Add(new SourceDiagnostic(at.File, at.Line, at.Column, "conditions are not available in this build"));
        return null;
    };
}
