using System.Text.Json;
using Warden.Core.Pipeline;
using Warden.Core.Policy;
using Warden.Core.Text;

namespace Warden.Core.Tests.Policy;

/// <summary>Compiles policy text and builds calls for the policy tests.</summary>
internal static class PolicyKit
{
    public const string PolicyFile = "policy.yaml";

    /// <summary>Compiles one file, with optional list files and reference checks.</summary>
    public static PolicyCompileResult Result(string yaml, PolicyReferences? references = null, IReadOnlyDictionary<string, string>? listFiles = null) =>
        PolicyCompiler.Compile(
            [(PolicyFile, yaml)],
            (_, rel) => listFiles is not null && listFiles.TryGetValue(rel, out var t) ? t : null,
            PolicyConditions.Factory,
            references);

    /// <summary>Compiles one file and requires success.</summary>
    public static CompiledPolicy Compile(string yaml, PolicyReferences? references = null, IReadOnlyDictionary<string, string>? listFiles = null)
    {
        var result = Result(yaml, references, listFiles);
        Assert.True(result.Success, string.Join(Environment.NewLine, result.Diagnostics));
        return result.Policy!;
    }

    /// <summary>Compiles and returns the errors (not warnings), requiring at least one.</summary>
    public static IReadOnlyList<SourceDiagnostic> Errors(string yaml, PolicyReferences? references = null)
    {
        var result = Result(yaml, references);
        Assert.False(result.Success, "the policy compiled but should not have");
        return [.. result.Diagnostics.Where(d => !d.IsWarning)];
    }

    /// <summary>Compiles and returns the warnings, requiring success.</summary>
    public static IReadOnlyList<SourceDiagnostic> Warnings(string yaml, PolicyReferences? references = null)
    {
        var result = Result(yaml, references);
        Assert.True(result.Success, string.Join(Environment.NewLine, result.Diagnostics));
        return [.. result.Diagnostics.Where(d => d.IsWarning)];
    }

    /// <summary>A call.</summary>
    public static CallContext Call(
        string server,
        string target,
        string? args = null,
        string agent = "agent-1",
        string[]? groups = null,
        ToolClasses classes = ToolClasses.Mutating | ToolClasses.Destructive | ToolClasses.Outbound,
        McpOperation operation = McpOperation.ToolCall,
        string[]? labels = null) => new()
        {
            Agent = new AgentIdentity(agent, groups ?? []),
            SessionId = agent,
            Operation = operation,
            Server = server,
            Target = target,
            Arguments = args is null ? null : Args(args),
            AnnotatedClasses = classes,
            SessionLabels = labels ?? [],
            ReceivedAt = new DateTimeOffset(2026, 3, 2, 10, 0, 0, TimeSpan.Zero),
        };

    public static Dictionary<string, JsonElement> Args(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
    }

    /// <summary>The decision as "effect by rule", "error by rule" for errors.</summary>
    public static string Show(Decision d) => $"{(d.IsError ? "error" : EffectNames.Name(d.Effect))} by {d.RuleId}";

    public static string Decide(CompiledPolicy policy, CallContext call) => Show(policy.Decide(call));
}
