using System.Text;
using System.Text.Json;
using Warden.Core.Conditions;
using static Warden.Core.Tests.Conditions.Kit;

namespace Warden.Core.Tests.Conditions;

/// <summary>Inputs chosen to make a naive engine run away. Each must finish (generously bounded) with true, false or an error.</summary>
public sealed class HostileInputTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static ConditionOutcome Bounded(Func<ConditionOutcome> run)
    {
        using var cts = new CancellationTokenSource(Bound);
        var task = Task.Run(run, cts.Token);
        Assert.True(task.Wait(Bound), "evaluation did not finish within the bound");
        return task.Result;
    }

    private static ConditionOutcome EvalArgs(string source, JsonElement args) =>
        Bounded(() => Compile(source).Evaluate(new ConditionInput(args, Context)));

    [Theory]
    [InlineData("^(a+)+$")]
    [InlineData("(a|aa)+$")]
    [InlineData("(a|a?)+b")]
    [InlineData("^(([a-z])+.)+[A-Z]([a-z])+$")]
    public void Catastrophic_backtracking_patterns_run_in_linear_time(string pattern)
    {
        var c = Compile($"args.s.matches('{pattern.Replace("\\", "\\\\", StringComparison.Ordinal)}')");
        foreach (var n in new[] { 26, 5_000, 200_000 })
        {
            var s = new string('a', n) + "!";
            using var doc = JsonDocument.Parse(JsonSerializer.Serialize(new { s }));
            var o = Bounded(() => c.Evaluate(new ConditionInput(doc.RootElement, Context)));
            Assert.False(o.IsTrue && pattern.EndsWith('$'));
        }
    }

    [Fact]
    public void Hundred_level_nested_arguments()
    {
        var sb = new StringBuilder();
        for (var i = 0; i < 100; i++)
        {
            sb.Append("{\"a\":[");
        }

        sb.Append('1');
        for (var i = 0; i < 100; i++)
        {
            sb.Append("]}");
        }

        var nested = sb.ToString();
        using var doc = JsonDocument.Parse($"{{\"x\":{nested},\"y\":{nested}}}", new JsonDocumentOptions { MaxDepth = 1000 });
        var root = doc.RootElement;
        Assert.True(EvalArgs("args.x == args.y", root).IsTrue);
        Assert.True(EvalArgs("has(args.x.a)", root).IsTrue);
        Assert.True(EvalArgs("args.x.a.exists(e, e.a.exists(f, has(f.a)))", root).IsTrue);
        Assert.False(EvalArgs("args.x.a[0].a[0].a[0] == 1", root).IsTrue);
        Assert.True(EvalArgs("[args.x] == [args.y]", root).IsTrue);

        // 200 levels exceed the equality depth cap: an error, not a stack overflow.
        var deeper = "{\"a\":" + nested + "}";
        for (var i = 0; i < 7; i++)
        {
            deeper = "{\"a\":[" + deeper + "]}";
        }

        var text = nested;
        for (var i = 0; i < 2; i++)
        {
            text = text.Replace("1", nested, StringComparison.Ordinal);
        }

        using var deepDoc = JsonDocument.Parse($"{{\"x\":{text},\"y\":{text}}}", new JsonDocumentOptions { MaxDepth = 2000 });
        var o = EvalArgs("args.x == args.y", deepDoc.RootElement);
        Assert.True(o.IsError);
        Assert.Contains("nested", o.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void One_megabyte_strings()
    {
        var s = new string('a', 1 << 20) + "@corp.example";
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize(new { s, l = new[] { s, s } }));
        var root = doc.RootElement;
        Assert.True(EvalArgs("args.s.endsWith('@corp.example')", root).IsTrue);
        Assert.True(EvalArgs("args.s.contains('a@')", root).IsTrue);
        Assert.False(EvalArgs("args.s.startsWith('b')", root).IsTrue);
        Assert.True(EvalArgs("args.s.matches('a+@corp')", root).IsTrue);
        Assert.True(EvalArgs("size(args.s) > 1000000", root).IsTrue);
        Assert.True(EvalArgs("args.s == args.l[0]", root).IsTrue);
        Assert.True(EvalArgs("domain(args.s) == 'corp.example'", root).IsTrue);
        Assert.True(EvalArgs("args.s in args.l", root).IsTrue);
        Assert.False(EvalArgs("args.s.lowerAscii() == ''", root).IsTrue);
        Assert.False(EvalArgs("size(args.s.split('a')) < 0", root).IsTrue);
        Assert.False(EvalArgs("path_within(args.s, '/srv')", root).IsTrue);
        Assert.False(EvalArgs("glob(args.s, '**/x')", root).IsTrue);
    }

    [Fact]
    public void Quadratic_macros_hit_the_cost_budget()
    {
        var items = Enumerable.Range(0, 100_000).ToArray();
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize(new { a = items }));
        var o = EvalArgs("args.a.all(x, args.a.exists(y, y == x))", doc.RootElement);
        Assert.True(o.IsError);
        Assert.Contains("cost", o.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void String_doubling_hits_the_cost_budget()
    {
        var s = new string('x', 1 << 20);
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize(new { s }));
        var source = "size(" + string.Concat(Enumerable.Repeat("args.s + ", 40)) + "args.s) > 0";
        var o = EvalArgs(source, doc.RootElement);
        Assert.True(o.IsError);
    }

    [Fact]
    public void Huge_lists_from_literals_and_maps_are_bounded()
    {
        using var doc = JsonDocument.Parse("{\"m\":{\"a\":1,\"b\":2}}");
        Assert.True(EvalArgs("args.m.all(k, k in ['a', 'b'])", doc.RootElement).IsTrue);
        Assert.True(EvalArgs("args.m.map(k, k).size() == 2", doc.RootElement).IsTrue);
    }

    [Fact]
    public void Deeply_nested_macros_in_source_are_bounded()
    {
        var src = "[1].all(a, [1].all(b, [1].all(c, [1].all(d, [1].all(e, [1].all(f, [1].all(g, [1].all(h, a == h))))))))";
        Assert.True(Bounded(() => Compile(src).Evaluate(default)).IsTrue);
        var tooDeep = string.Concat(Enumerable.Range(0, 20).Select(i => $"[1].all(v{i}, ")) + "true" + new string(')', 20);
        Assert.False(new ConditionCompiler(Env).Compile(tooDeep).Success);
    }
}
