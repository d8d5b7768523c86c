using Warden.Core.Conditions;
using static Warden.Core.Tests.Conditions.Kit;

namespace Warden.Core.Tests.Conditions;

public sealed class ConditionDiagnosticsTests
{
    [Theory]
    [InlineData("args.name == ", "unexpected end")]
    [InlineData("args.name = 'x'", "'=='")]
    [InlineData("(args.a", "expected ')'")]
    [InlineData("'abc", "unterminated")]
    [InlineData("args.a ^ 2", "unexpected character")]
    [InlineData("'a' < 1", "cannot order")]
    [InlineData("'a' == 1", "cannot compare")]
    [InlineData("1 + 1.0 > 0", "no operator")]
    [InlineData("agent.name == 'x'", "unknown variable 'agent'")]
    [InlineData("lists.payee.size() > 0", "did you mean 'payees'")]
    [InlineData("context.agent.nmae == 'x'", "did you mean 'name'")]
    [InlineData("context.user == 'x'", "context has no field 'user'")]
    [InlineData("args.x.startswith('a')", "did you mean 'startsWith'")]
    [InlineData("frobnicate(args.x)", "unknown function 'frobnicate'")]
    [InlineData("args.ids.all(1, true)", "must be a variable name")]
    [InlineData("args.ids.all(x)", "takes 2 arguments")]
    [InlineData("args.ids.exists(x, x + 1)", "predicate of exists()")]
    [InlineData("has(args)", "has() takes one field selection")]
    [InlineData("args.name.matches(args.pattern)", "literal pattern")]
    [InlineData("args.name.matches('(unclosed')", "invalid pattern")]
    [InlineData("args.name.matches('(a)\\\\1')", "pattern")]
    [InlineData("glob(args.path, args.pattern)", "literal pattern")]
    [InlineData("size(1) > 0", "size() needs")]
    [InlineData("1 + 2", "must be a bool")]
    [InlineData("'x'.startsWith(1)", "the argument must be string")]
    [InlineData("!1", "operand of '!'")]
    [InlineData("1 ? true : false", "condition of '?:'")]
    [InlineData("TestAllTypes{}", "message construction")]
    [InlineData("if == 1", "reserved")]
    public void Rejects_at_compile_time(string source, string messagePart)
    {
        var diags = Diagnose(source);
        var text = string.Join("; ", diags);
        Assert.Contains(messagePart, text, StringComparison.Ordinal);
    }

    [Fact]
    public void Reports_line_column_and_hint()
    {
        var d = Diagnose("args.a == 1 &&\n  lists.unknown.exists(x, x == 'a')").Single();
        Assert.Equal(2, d.Line);
        Assert.Equal(9, d.Column);
        Assert.Contains("unknown", d.Message, StringComparison.Ordinal);
        Assert.NotNull(d.Hint);
    }

    [Fact]
    public void Documented_example_diagnostic()
    {
        var d = Diagnose("args.amount < 1000.0 && args.recipient in lists.payee").Single();
        Assert.Equal("1:49: unknown list 'payee' (hint: did you mean 'payees'?)", d.ToString());
    }

    [Fact]
    public void Reports_several_errors_in_source_order()
    {
        var d = Diagnose("foo(1) && bar == 2 && 'a' < 1");
        Assert.Equal(3, d.Count);
        Assert.True(d[0].Column < d[1].Column && d[1].Column < d[2].Column);
    }

    [Fact]
    public void Limits_source_length_and_nesting()
    {
        var compiler = new ConditionCompiler(new ConditionEnvironment { MaxSourceLength = 100 });
        Assert.False(compiler.Compile(new string('a', 101)).Success);
        var deep = new string('(', 5000) + "true" + new string(')', 5000);
        var r = new ConditionCompiler(new ConditionEnvironment { MaxSourceLength = 100_000 }).Compile(deep);
        Assert.False(r.Success);
        Assert.Contains("nested", r.Diagnostics[0].Message, StringComparison.Ordinal);
        var bangs = new ConditionCompiler(new ConditionEnvironment { MaxSourceLength = 1_000_000 }).Compile(new string('!', 200_000) + "true");
        Assert.False(bangs.Success);
    }

    [Fact]
    public void Compile_never_throws_on_garbage()
    {
        var compiler = new ConditionCompiler(Env);
        var rnd = new Random(42);
        const string alphabet = "abc.()[]{}'\"\\!&|=<>+-*/%?:,01 9u`rbx@#\n";
        for (var i = 0; i < 5000; i++)
        {
            var s = new string(Enumerable.Range(0, rnd.Next(0, 40)).Select(_ => alphabet[rnd.Next(alphabet.Length)]).ToArray());
            var r = compiler.Compile(s);
            Assert.True(r.Success || r.Diagnostics.Count > 0);
        }
    }
}
