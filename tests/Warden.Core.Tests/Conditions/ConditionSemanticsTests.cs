using System.Text.Json;
using Warden.Core.Conditions;
using static Warden.Core.Tests.Conditions.Kit;

namespace Warden.Core.Tests.Conditions;

public sealed class ConditionSemanticsTests
{
    private const string Args = """
        {"ids":[1,2,3,4,5,6],"recipient":"alice@corp.example","amount":250.5,"count":7,
         "urls":["https://corp.example/a","https://DOCS.example.org./b"],"cc":"x@y.z","name":"Report.PDF",
         "nested":{"a":{"b":true}},"tags":["a","b"],"big":12345678901234567890,"flag":false,"nothing":null}
        """;

    [Theory]
    [InlineData("size(args.ids) > 5", true)]
    [InlineData("size(args.ids) > 6", false)]
    [InlineData("args.recipient.endsWith('@corp.example')", true)]
    [InlineData("args.recipient.startsWith('bob')", false)]
    [InlineData("args.amount < 1000.0 && args.recipient in lists.payees", true)]
    [InlineData("args.amount < 100.0 && args.recipient in lists.payees", false)]
    [InlineData("args.urls.all(u, domain(u) in lists.allowed_domains)", true)]
    [InlineData("args.urls.exists_one(u, domain(u) == 'corp.example')", true)]
    [InlineData("has(args.cc)", true)]
    [InlineData("has(args.bcc)", false)]
    [InlineData("has(args.nested.a.b)", true)]
    [InlineData("has(args.nested.a.c)", false)]
    [InlineData("context.agent.groups.exists(g, g == 'finance')", true)]
    [InlineData("context.agent.groups.exists(g, g == 'legal')", false)]
    [InlineData("context.agent.name == 'billing-bot'", true)]
    [InlineData("'prod' in context.session.labels", true)]
    [InlineData("context.counts['send_email'] >= 3", true)]
    [InlineData("'other' in context.counts", false)]
    [InlineData("context.tool.name == 'send_email' && context.tool.server == 'mail'", true)]
    [InlineData("'outbound' in context.tool.classes", true)]
    [InlineData("context.now > timestamp('2026-01-01T00:00:00Z')", true)]
    [InlineData("context.now - timestamp('2026-01-02T00:00:00Z') < duration('1h')", false)]
    [InlineData("context.now.getHours() == 3", true)]
    [InlineData("args.count == 7.0", true)]
    [InlineData("args.count == 7u", true)]
    [InlineData("args.amount > 250", true)]
    [InlineData("args.big > 1", true)]
    [InlineData("args.name.lowerAscii() == 'report.pdf'", true)]
    [InlineData("args.name.matches('(?i)\\\\.pdf$')", true)]
    [InlineData("matches(args.name, '^Rep')", true)]
    [InlineData("args.recipient.split('@')[1] == 'corp.example'", true)]
    [InlineData("args.recipient.contains('@')", true)]
    [InlineData("size(args.recipient) == 18", true)]
    [InlineData("args.tags.map(t, t + '!') == ['a!', 'b!']", true)]
    [InlineData("args.ids.filter(i, i % 2 == 0) == [2, 4, 6]", true)]
    [InlineData("args.ids.exists(i, i > 5) ? true : false", true)]
    [InlineData("args.nothing == null", true)]
    [InlineData("!args.flag", true)]
    [InlineData("args.nested.a == {'b': true}", true)]
    [InlineData("args.`nested`.a.b", true)]
    [InlineData("int(args.count) + 1 == 8", true)]
    [InlineData("string(args.count) == '7'", true)]
    [InlineData("type(args.count) == int && type(args.amount) == double", true)]
    [InlineData("b'abc' == bytes('abc')", true)]
    [InlineData("[1, 2] + [3] == [1, 2, 3]", true)]
    [InlineData("{'a': 1}.a == 1", true)]
    public void Evaluates(string source, bool expected)
    {
        var outcome = Eval(source, Args);
        Assert.False(outcome.IsError, outcome.ErrorMessage);
        Assert.Equal(expected, outcome.IsTrue);
    }

    [Theory]
    [InlineData("args.missing == 1", "no such key")]
    [InlineData("args.recipient.missing == 1", "no such field")]
    [InlineData("args.ids[10] == 1", "index out of range")]
    [InlineData("args.count / 0 == 1", "division by zero")]
    [InlineData("args.count % 0 == 1", "modulus by zero")]
    [InlineData("args.amount + 1 > 0", "no matching overload")]
    [InlineData("9223372036854775807 + args.count > 0", "overflow")]
    [InlineData("args.count", "not bool")]
    [InlineData("args.count && true", "no matching overload")]
    [InlineData("true && args.missing", "no such key")]
    [InlineData("args.missing || false", "no such key")]
    [InlineData("args.ids.all(i, i / 0 > 1)", "division by zero")]
    [InlineData("args.ids.exists_one(i, i / (i - 1) > 0)", "division by zero")]
    [InlineData("args.ids.map(i, 10 / (i - 1)) == []", "division by zero")]
    [InlineData("args.recipient > 1", "no matching overload")]
    [InlineData("int('x') == 1", "cannot convert")]
    public void Errors_surface(string source, string messagePart)
    {
        var outcome = Eval(source, Args);
        Assert.True(outcome.IsError, $"{source} => {outcome}");
        Assert.Contains(messagePart, outcome.ErrorMessage, StringComparison.Ordinal);
        Assert.True(outcome.IsTrueOrError);
    }

    [Theory]
    [InlineData("false && args.missing", false)]
    [InlineData("args.missing && false", false)]
    [InlineData("true || args.missing", true)]
    [InlineData("args.missing || true", true)]
    [InlineData("args.ids.exists(i, i == 6 || 1 / (i - 1) > 0)", true)]
    [InlineData("args.ids.all(i, i > 100 && 1 / (i - 1) > 0)", false)]
    [InlineData("args.ids.exists(i, 10 / (i - 1) == 2)", true)]
    [InlineData("args.ids.all(i, i == 1 || 10 / (i - 1) > 100)", false)]
    [InlineData("args.count == 7 || args.count.foo", true)]
    public void Errors_absorbed_where_cel_says(string source, bool expected)
    {
        var outcome = Eval(source, Args);
        Assert.False(outcome.IsError, outcome.ErrorMessage);
        Assert.Equal(expected, outcome.IsTrue);
    }

    [Theory]
    [InlineData("size(args.ids) > 5")]
    [InlineData("size(args.recipient) == 18")]
    [InlineData("size(args.nested) == 1")]
    [InlineData("size(args.amount) == 1")]
    [InlineData("size(args.missing) == 0")]
    [InlineData("size(args.nothing) == 0")]
    [InlineData("args.recipient.endsWith('.example')")]
    [InlineData("args.esc.startsWith('a\u00e9')")]
    [InlineData("args.count.endsWith('x')")]
    [InlineData("args.missing.contains('a')")]
    [InlineData("args.amount < 1000.0")]
    [InlineData("args.count < 7.5")]
    [InlineData("args.count >= 7")]
    [InlineData("args.big < 1.5")]
    [InlineData("args.big > 1.5")]
    [InlineData("args.neg >= -0.5 && args.neg < -0.25")]
    [InlineData("args.exp == 100.0 && args.exp > 99")]
    [InlineData("args.recipient < 1.0")]
    [InlineData("args.missing <= 1.0")]
    [InlineData("args.recipient == 'alice@corp.example'")]
    [InlineData("args.recipient != 'alice@corp.example'")]
    [InlineData("args.esc == 'a\u00e9'")]
    [InlineData("args.count == 'x'")]
    [InlineData("args.missing == 'a'")]
    [InlineData("args.recipient in lists.payees")]
    [InlineData("args.esc in lists.payees")]
    [InlineData("args.count in lists.payees")]
    [InlineData("args.missing in lists.payees")]
    [InlineData("has(args.nothing) && !has(args.missing)")]
    public void Shortcut_paths_agree_with_the_general_evaluator(string source)
    {
        // args.NAME compiles to direct argument reads (and, in a policy decision, reads shared through a cache);
        // dyn(args).NAME takes the general map path. Every way of passing arguments must give the same outcome.
        const string json = """
            {"ids":[1,2,3,4,5,6],"recipient":"alice@corp.example","amount":250.5,"count":7,"nested":{"a":1},
             "big":12345678901234567890,"nothing":null,"esc":"a\u00e9","neg":-0.5,"exp":1e2}
            """;
        var general = Compile(source.Replace("args.", "dyn(args).", StringComparison.Ordinal));
        var fast = Compile(source);
        using var doc = JsonDocument.Parse(json);
        var dict = Dict(json);
        var expected = general.Evaluate(new ConditionInput(doc.RootElement, Context));
        Assert.Equal(expected, fast.Evaluate(new ConditionInput(doc.RootElement, Context)));
        Assert.Equal(expected, fast.Evaluate(new ConditionInput(dict, Context)));
        var cache = ArgCache.Rent();
        try
        {
            // Twice through one cache: the second evaluation reads what the first remembered.
            Assert.Equal(expected, fast.Evaluate(new ConditionInput(dict, Context) { Cache = cache }));
            Assert.Equal(expected, fast.Evaluate(new ConditionInput(dict, Context) { Cache = cache }));
        }
        finally
        {
            ArgCache.Return(cache);
        }
    }

    [Theory]
    [InlineData("args.x in lists.payees")]
    [InlineData("args.x < 1.0")]
    [InlineData("args.x == 'a'")]
    [InlineData("args.x != 'a'")]
    [InlineData("args.x.endsWith('a')")]
    [InlineData("has(args.x) && args.x < 1")]
    public void Undefined_json_argument_gives_the_general_forms_outcome(string source)
    {
        // A dictionary handed over by a caller may hold an undefined element; the fast forms read raw JSON and
        // must neither throw nor answer differently from the general form.
        var c = Compile(source);
        var args = new Dictionary<string, JsonElement> { ["x"] = default };
        var v = c.EvaluateValue(new ConditionInput(args, Context));
        var expected = v.Kind == Kind.Bool ? (v.AsBool ? ConditionOutcome.True : ConditionOutcome.False) : ConditionOutcome.Error(v.ErrorMessage);
        Assert.Equal(expected, c.Evaluate(new ConditionInput(args, Context)));
    }

    [Fact]
    public void Dictionary_and_element_arguments_agree()
    {
        var c = Compile("args.amount < 1000.0 && args.recipient in lists.payees && size(args.ids) > 5");
        using var doc = JsonDocument.Parse(Args);
        var a = c.Evaluate(new ConditionInput(doc.RootElement, Context));
        var b = c.Evaluate(new ConditionInput(Dict(Args), Context));
        Assert.True(a.IsTrue);
        Assert.Equal(a, b);
    }

    [Fact]
    public void Missing_arguments_and_context()
    {
        var c = Compile("has(args.x) || context.agent.name == 'a'");
        var noArgs = c.Evaluate(new ConditionInput((IReadOnlyDictionary<string, JsonElement>?)null, null));
        Assert.True(noArgs.IsError);
        Assert.Contains("no context", noArgs.ErrorMessage, StringComparison.Ordinal);
        Assert.False(Compile("has(args.x)").Evaluate(default).IsTrue);
    }

    [Fact]
    public void Context_sub_objects_can_be_used_as_values()
    {
        Assert.True(Eval("context.agent.name in ['billing-bot'] && size(context.agent) == 2 && context.agent['name'] == 'billing-bot'").IsTrue);
    }

    [Fact]
    public void Evaluation_is_allocation_free_for_predicates_over_existing_values()
    {
        using var doc = JsonDocument.Parse(Args);
        var dict = Dict(Args);
        string[] sources =
        [
            "size(args.ids) > 5",
            "args.recipient.endsWith('@corp.example')",
            "args.amount < 1000.0 && args.recipient in lists.payees",
            "has(args.cc)",
            "context.agent.groups.exists(g, g == 'finance')",
            "args.ids.all(i, i > 0)",
        ];
        foreach (var s in sources)
        {
            var c = Compile(s);
            var inputs = new[] { new ConditionInput(doc.RootElement, Context), new ConditionInput(dict, Context) };
            foreach (var input in inputs)
            {
                for (var i = 0; i < 100; i++)
                {
                    c.Evaluate(input);
                }

                var before = GC.GetAllocatedBytesForCurrentThread();
                for (var i = 0; i < 1000; i++)
                {
                    Assert.True(c.Evaluate(input).IsTrue);
                }

                var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                Assert.True(allocated == 0, $"{s}: {allocated} bytes for 1000 evaluations");
            }
        }
    }
}
