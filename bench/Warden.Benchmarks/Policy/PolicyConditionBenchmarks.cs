using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Warden.Core;
using Warden.Core.Pipeline;
using Warden.Core.Policy;

namespace Warden.Benchmarks.Policy;

/// <summary>
/// Where a decision's time goes: one rule condition evaluated alone (the per-candidate cost inside
/// <see cref="CompiledPolicy.Decide"/>), and a decision whose candidate has no condition (index and match cost).
/// </summary>
[MemoryDiagnoser]
public class PolicyConditionBenchmarks
{
    private IRuleCondition _condition = null!;
    private CompiledPolicy _unconditional = null!;
    private CallContext _call = null!;

    [GlobalSetup]
    public void Setup()
    {
        var policy = PolicyCompiler.Compile(
            [("c.yaml", "lists:\n  payees: [alice@corp.example, bob@corp.example, carol@corp.example, dan@supplier.example]\nrules:\n  - id: r\n    when: args.amount < 1000.0 && args.recipient in lists.payees\n    effect: allow\n")],
            (_, _) => null,
            PolicyConditions.Factory).Policy!;
        _condition = policy.Rules[0].Condition!;
        _unconditional = PolicyCompiler.Compile([("u.yaml", "rules:\n  - id: r\n    match: { server: mail, tool: send_email }\n    effect: allow\n")], (_, _) => null, PolicyConditions.Factory).Policy!;
        using var doc = JsonDocument.Parse("""{"recipient":"bob@corp.example","subject":"quarterly report","body":"see attached","amount":42}""");
        _call = new CallContext
        {
            Agent = new AgentIdentity("agent-1", ["t1"]),
            SessionId = "agent-1",
            Operation = McpOperation.ToolCall,
            Server = "mail",
            Target = "send_email",
            Arguments = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone()),
            AnnotatedClasses = ToolClasses.Mutating | ToolClasses.Outbound,
        };
    }

    [Benchmark(Description = "one condition: amount < 1000.0 && recipient in payees")]
    public bool Condition() => _condition.Evaluate(_call, ToolClasses.Mutating, []).Value;

    [Benchmark(Description = "decide, one unconditional candidate")]
    public Decision Unconditional() => _unconditional.Decide(_call);
}
