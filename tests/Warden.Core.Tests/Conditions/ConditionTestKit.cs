using System.Text.Json;
using Warden.Core.Conditions;

namespace Warden.Core.Tests.Conditions;

internal static class Kit
{
    public static readonly ConditionEnvironment Env = new()
    {
        Lists = new Dictionary<string, IReadOnlyList<string>>
        {
            ["payees"] = ["alice@corp.example", "bob@corp.example"],
            ["allowed_domains"] = ["corp.example", "docs.example.org"],
        },
    };

    public static readonly ConditionContext Context = new()
    {
        AgentName = "billing-bot",
        AgentGroups = ["ops", "finance"],
        SessionId = "s-1",
        SessionLabels = new HashSet<string> { "prod" },
        Counts = new Dictionary<string, long> { ["send_email"] = 3 },
        Server = "mail",
        Tool = "send_email",
        ToolClasses = ["outbound", "mutating"],
        Now = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero),
    };

    public static CompiledCondition Compile(string source, ConditionEnvironment? env = null)
    {
        var r = new ConditionCompiler(env ?? Env).Compile(source);
        Assert.True(r.Success, $"{source}: {string.Join("; ", r.Diagnostics)}");
        return r.Condition!;
    }

    public static IReadOnlyList<ConditionDiagnostic> Diagnose(string source)
    {
        var r = new ConditionCompiler(Env).Compile(source);
        Assert.False(r.Success, $"{source} compiled but should not");
        return r.Diagnostics;
    }

    public static ConditionOutcome Eval(string source, string argsJson = "{}", IConditionContext? context = null)
    {
        using var doc = JsonDocument.Parse(argsJson, new JsonDocumentOptions { MaxDepth = 512 });
        return Compile(source).Evaluate(new ConditionInput(doc.RootElement, context ?? Context));
    }

    public static Dictionary<string, JsonElement> Dict(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
    }
}
