using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Cel;
using Warden.Core.Conditions;

namespace Warden.Benchmarks.Conditions;

/// <summary>
/// The issue's example conditions, compiled once, evaluated per call over the JSON arguments the MCP SDK hands over.
/// The <c>Cel_*</c> rows run the same expressions through the Cel 0.3.3 package; it cannot read <see cref="JsonElement"/>,
/// so each of its rows includes converting the arguments to dictionaries and lists, as a gateway would have to per call.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class ConditionBenchmarks
{
    private const string ArgsJson = """
        {"ids":[101,102,103,104,105,106,107],"recipient":"alice@corp.example","amount":250.5,
         "subject":"Quarterly report","cc":"bob@corp.example",
         "urls":["https://corp.example/reports/q3","https://docs.example.org/guide","https://corp.example/x?y=1"]}
        """;

    public static readonly (string Name, string Source)[] Expressions =
    [
        ("SizeGt5", "size(args.ids) > 5"),
        ("EndsWith", "args.recipient.endsWith('@corp.example')"),
        ("AmountAndInList", "args.amount < 1000.0 && args.recipient in lists.payees"),
        ("AllDomain", "args.urls.all(u, domain(u) in lists.allowed_domains)"),
        ("Has", "has(args.cc)"),
        ("GroupsExists", "context.agent.groups.exists(g, g == 'finance')"),
    ];

    private static readonly string[] Payees = ["alice@corp.example", "bob@corp.example", "carol@corp.example"];
    private static readonly string[] AllowedDomains = ["corp.example", "docs.example.org"];

    private readonly Dictionary<string, CompiledCondition> _warden = [];
    private readonly Dictionary<string, CelProgramDelegate> _cel = [];
    private Dictionary<string, JsonElement> _args = null!;
    private JsonDocument _doc = null!;
    private ConditionContext _context = null!;
    private Dictionary<string, object?> _celStatic = null!;

    [GlobalSetup(Targets = [nameof(Cel_SizeGt5), nameof(Cel_EndsWith), nameof(Cel_AmountAndInList), nameof(Cel_AllDomain), nameof(Cel_Has), nameof(Cel_GroupsExists), nameof(Cel_ConvertArgsOnly)])]
    public void Setup()
    {
        _doc = JsonDocument.Parse(ArgsJson);
        _args = _doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        _context = new ConditionContext
        {
            AgentName = "billing-bot",
            AgentGroups = ["ops", "reporting", "finance"],
            SessionId = "s-42",
            Server = "mail",
            Tool = "send_email",
            Now = DateTimeOffset.UtcNow,
        };

        var compiler = new ConditionCompiler(new ConditionEnvironment
        {
            Lists = new Dictionary<string, IReadOnlyList<string>> { ["payees"] = Payees, ["allowed_domains"] = AllowedDomains },
        });
        var celEnv = new CelEnvironment(null, null);
        celEnv.RegisterFunction("domain", [typeof(string)], static a => NetHelpers.Domain((string)a[0]!));
        foreach (var (name, source) in Expressions)
        {
            var r = compiler.Compile(source);
            _warden[name] = r.Condition ?? throw new InvalidOperationException(string.Join("; ", r.Diagnostics));
            _cel[name] = celEnv.Compile(source);
        }

        // Lists and context are per-policy / per-session, so they are converted once; only args change per call.
        _celStatic = new Dictionary<string, object?>
        {
            ["lists"] = new Dictionary<string, object?> { ["payees"] = Payees.Cast<object?>().ToList(), ["allowed_domains"] = AllowedDomains.Cast<object?>().ToList() },
            ["context"] = new Dictionary<string, object?>
            {
                ["agent"] = new Dictionary<string, object?> { ["name"] = _context.AgentName, ["groups"] = _context.AgentGroups.Cast<object?>().ToList() },
            },
        };

        foreach (var (name, _) in Expressions)
        {
            var w = Warden(name);
            var c = CelRun(name);
            if (!w || c is not true)
            {
                throw new InvalidOperationException($"{name}: warden={w}, cel={c ?? "null"}");
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _doc.Dispose();

    private bool Warden(string name) => _warden[name].Evaluate(new ConditionInput(_args, _context)).IsTrue;

    private object? CelRun(string name)
    {
        var vars = new Dictionary<string, object?>(_celStatic) { ["args"] = Convert(_doc.RootElement) };
        return _cel[name](vars);
    }

    private static object? Convert(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => Convert(p.Value)),
        JsonValueKind.Array => e.EnumerateArray().Select(Convert).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    private CompiledCondition _wSize = null!, _wEnds = null!, _wAmount = null!, _wAll = null!, _wHas = null!, _wGroups = null!;

    [GlobalSetup(Targets = [nameof(Warden_SizeGt5), nameof(Warden_EndsWith), nameof(Warden_AmountAndInList), nameof(Warden_AllDomain), nameof(Warden_Has), nameof(Warden_GroupsExists)])]
    public void SetupWarden()
    {
        Setup();
        (_wSize, _wEnds, _wAmount, _wAll, _wHas, _wGroups) =
            (_warden["SizeGt5"], _warden["EndsWith"], _warden["AmountAndInList"], _warden["AllDomain"], _warden["Has"], _warden["GroupsExists"]);
    }

    [Benchmark]
    public bool Warden_SizeGt5() => _wSize.Evaluate(new ConditionInput(_args, _context)).IsTrue;

    [Benchmark]
    public bool Warden_EndsWith() => _wEnds.Evaluate(new ConditionInput(_args, _context)).IsTrue;

    [Benchmark]
    public bool Warden_AmountAndInList() => _wAmount.Evaluate(new ConditionInput(_args, _context)).IsTrue;

    [Benchmark]
    public bool Warden_AllDomain() => _wAll.Evaluate(new ConditionInput(_args, _context)).IsTrue;

    [Benchmark]
    public bool Warden_Has() => _wHas.Evaluate(new ConditionInput(_args, _context)).IsTrue;

    [Benchmark]
    public bool Warden_GroupsExists() => _wGroups.Evaluate(new ConditionInput(_args, _context)).IsTrue;

    [Benchmark]
    public object? Cel_SizeGt5() => CelRun("SizeGt5");

    [Benchmark]
    public object? Cel_EndsWith() => CelRun("EndsWith");

    [Benchmark]
    public object? Cel_AmountAndInList() => CelRun("AmountAndInList");

    [Benchmark]
    public object? Cel_AllDomain() => CelRun("AllDomain");

    [Benchmark]
    public object? Cel_Has() => CelRun("Has");

    [Benchmark]
    public object? Cel_GroupsExists() => CelRun("GroupsExists");

    [Benchmark]
    public object? Cel_ConvertArgsOnly() => Convert(_doc.RootElement);
}
