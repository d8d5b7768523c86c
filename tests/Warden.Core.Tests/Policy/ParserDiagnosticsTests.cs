using Warden.Core.Policy;
using Warden.Core.Text;
using static Warden.Core.Tests.Policy.PolicyKit;

namespace Warden.Core.Tests.Policy;

public class ParserDiagnosticsTests
{
    private static SourceDiagnostic Single(string yaml, string contains)
    {
        var errors = Errors(yaml);
        var d = errors.FirstOrDefault(e => e.Message.Contains(contains, StringComparison.Ordinal));
        Assert.True(d is not null, $"no error containing '{contains}' in:{Environment.NewLine}{string.Join(Environment.NewLine, errors)}");
        Assert.Equal(PolicyFile, d!.File);
        return d;
    }

    [Fact]
    public void Compile_UnknownRuleField_DidYouMean()
    {
        var d = Single("""
            rules:
              - id: a
                efect: allow
            """, "unknown field 'efect'");
        Assert.Equal((3, 5), (d.Line, d.Column));
        Assert.Equal("did you mean 'effect'?", d.Hint);
        Assert.StartsWith("policy.yaml:3:5: error: unknown field 'efect' in a rule (hint: did you mean 'effect'?)", d.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_UnknownTopLevelField_DidYouMean()
    {
        var d = Single("""
            version: 1
            rule:
              - id: a
                effect: allow
            """, "unknown field 'rule'");
        Assert.Equal((2, 1), (d.Line, d.Column));
        Assert.Equal("did you mean 'rules'?", d.Hint);
    }

    [Fact]
    public void Compile_UnknownMatchField_DidYouMean()
    {
        var d = Single("""
            rules:
              - id: a
                match: { servr: mail }
                effect: allow
            """, "unknown field 'servr'");
        Assert.Equal((3, 14), (d.Line, d.Column));
        Assert.Equal("did you mean 'server'?", d.Hint);
    }

    [Fact]
    public void Compile_UnrelatedUnknownField_ListsKnownFields()
    {
        var d = Single("""
            rules:
              - id: a
                effect: allow
                zzzzzzzz: 1
            """, "unknown field 'zzzzzzzz'");
        Assert.StartsWith("known fields: id, description, match", d.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_BadEffect_NamesTheChoices()
    {
        var d = Single("""
            rules:
              - id: a
                effect: permit
            """, "effect must be allow, deny, ask or shadow, not 'permit'");
        Assert.Equal((3, 13), (d.Line, d.Column));
        Assert.Contains("rule 'a'", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_MissingEffect_Reported()
    {
        var d = Single("""
            rules:
              - id: a
                match: { tool: x }
            """, "rule 'a' needs an effect");
        Assert.Equal((2, 5), (d.Line, d.Column));
    }

    [Fact]
    public void Compile_BadDefault_Reported()
    {
        var d = Single("default: maybe\n", "default must be allow, deny, ask or shadow, not 'maybe'");
        Assert.Equal((1, 10), (d.Line, d.Column));
    }

    [Fact]
    public void Compile_MissingId_HintsAnExample()
    {
        var d = Single("""
            rules:
              - effect: allow
            """, "a rule needs an id");
        Assert.Equal((2, 5), (d.Line, d.Column));
        Assert.Contains("id:", d.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_DuplicateIds_NamesTheFirst()
    {
        var d = Single("""
            rules:
              - id: same
                effect: allow
              - id: same
                effect: deny
            """, "rule id 'same' is used twice");
        Assert.Equal((4, 5), (d.Line, d.Column));
        Assert.Contains("first at policy.yaml:2:5", d.Message, StringComparison.Ordinal);
        Assert.Contains("unique", d.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_DuplicateIdsAcrossFiles_NamesTheOtherFile()
    {
        var result = PolicyCompiler.Compile(
            [("a.yaml", "rules: [{ id: same, effect: allow }]\n"), ("b.yaml", "rules: [{ id: same, effect: deny }]\n")],
            (_, _) => null,
            PolicyConditions.Factory);
        var d = Assert.Single(result.Diagnostics, x => !x.IsWarning);
        Assert.Equal("b.yaml", d.File);
        Assert.Contains("first at a.yaml:1:9", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_DefaultSetInTwoFiles_Reported()
    {
        var result = PolicyCompiler.Compile([("a.yaml", "default: deny\n"), ("b.yaml", "default: allow\n")], (_, _) => null, PolicyConditions.Factory);
        Assert.False(result.Success);
        Assert.Contains(result.Diagnostics, d => d.File == "b.yaml" && d.Message.Contains("default is set again (first at a.yaml:1:10)", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("rules:\n  - id: a\n    effect: [allow\n", "malformed YAML")]
    [InlineData("rules:\n  - id: a\n\t effect: allow\n", "malformed YAML")]
    [InlineData("rules: {id: a\n", "malformed YAML")]
    public void Compile_BadYaml_ReportedWithPosition(string yaml, string contains)
    {
        var d = Single(yaml, contains);
        Assert.True(d.Line >= 1 && d.Column >= 1);
    }

    [Fact]
    public void Compile_BadYaml_LineOfTheProblem()
    {
        var d = Single("version: 1\nrules:\n  - id: a\n    effect: \"allow\n", "malformed YAML");
        Assert.InRange(d.Line, 4, 5);
    }

    [Fact]
    public void Compile_UnknownListInCondition_DidYouMean()
    {
        var d = Single("""
            lists:
              payees: [alice]
            rules:
              - id: a
                when: args.to in lists.payee
                effect: allow
            """, "condition:");
        Assert.Contains("payee", d.Message, StringComparison.Ordinal);
        Assert.Equal(5, d.Line);
        Assert.Equal(28, d.Column); // the list name after "lists."
        Assert.Equal("did you mean 'payees'?", d.Hint);
    }

    [Fact]
    public void Compile_ConditionTypeError_PositionedInTheFile()
    {
        var d = Single("""
            rules:
              - id: a
                when: args.amount < 10 && 'a' < 1
                effect: allow
            """, "cannot order");
        Assert.Equal(3, d.Line);
        Assert.Equal(35, d.Column); // the operator of 'a' < 1
    }

    [Fact]
    public void Compile_ConditionNotBool_Reported()
    {
        var d = Single("""
            rules:
              - id: a
                when: size(args.ids)
                effect: allow
            """, "must be a bool");
        Assert.Equal(3, d.Line);
        Assert.Equal("compare the value, e.g. size(x) > 0", d.Hint);
    }

    [Fact]
    public void Compile_UnknownClass_ListsClasses()
    {
        var d = Single("""
            rules:
              - id: a
                match: { class: readonly }
                effect: allow
            """, "unknown class 'readonly'");
        Assert.Contains("read_only", d.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_ReadOnlyCombinedWithMutating_Reported()
    {
        Single("""
            classes:
              mail: { send: [read_only, mutating] }
            """, "read_only cannot be combined");
    }

    [Fact]
    public void Compile_UnknownMethod_ListsMethods()
    {
        var d = Single("""
            rules:
              - id: a
                match: { method: tools/list }
                effect: allow
            """, "unknown method 'tools/list'");
        Assert.Contains("sampling", d.Hint, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("version: 2\n", "unsupported policy version 2")]
    [InlineData("rules: {}\n", "rules must be a list")]
    [InlineData("rules:\n  - id: a\n    effect: ask\n    timeout: soon\n", "timeout must be a duration")]
    [InlineData("rules:\n  - id: a\n    effect: ask\n    mode: later\n", "mode must be hold or defer")]
    [InlineData("rules:\n  - id: a\n    effect: ask\n    two_person: maybe\n", "two_person must be true or false")]
    [InlineData("lists:\n  l: { file: missing.txt }\n", "list file 'missing.txt' not found")]
    [InlineData("lists:\n  l: [a]\n  l: [b]\n", "malformed YAML")]
    [InlineData("agents:\n  bot: { group: [x] }\n", "unknown field 'group'")]
    [InlineData("[1, 2]\n", "a policy file must be a mapping")]
    public void Compile_OtherMistakes_Reported(string yaml, string contains) => Single(yaml, contains);

    [Fact]
    public void Compile_SeveralProblems_AllReported()
    {
        var errors = Errors("""
            rules:
              - id: a
                effect: permit
              - id: b
                efect: allow
              - id: c
                when: args.x ==
                effect: deny
            """);
        Assert.True(errors.Count >= 3, string.Join(Environment.NewLine, errors));
        Assert.Contains(errors, e => e.Line == 3 && e.Message.Contains("permit", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 5 && e.Message.Contains("efect", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 7 && e.Message.StartsWith("condition:", StringComparison.Ordinal));
    }

    [Fact]
    public void Compile_ListFile_ReadRelativeSkippingCommentsAndBlanks()
    {
        var policy = Compile("""
            lists:
              contacts: { file: contacts.txt }
            rules:
              - id: a
                when: args.to in lists.contacts
                effect: allow
            """, listFiles: new Dictionary<string, string> { ["contacts.txt"] = "# contacts\nann@x.example\n\n  bob@y.example  \n" });
        Assert.Equal(["ann@x.example", "bob@y.example"], policy.Document.Lists["contacts"].Values);
        Assert.Equal("allow by a", Decide(policy, Call("s", "t", """{"to": "bob@y.example"}""")));
    }

    [Fact]
    public void Compile_ApproversOnAllowRule_Warns()
    {
        var w = Warnings("""
            rules:
              - id: a
                effect: allow
                approvers: [leads]
            """);
        Assert.Contains(w, d => d.Message.Contains("apply only to effect ask", StringComparison.Ordinal));
    }

    [Fact]
    public void Compile_BadLimit_ReportsLineAndHint()
    {
        var w = Errors("""
            limits:
              - id: velocity
                rate: ten a minute
            """);
        Assert.Contains(w, d => d.Message.Contains("cannot read rate 'ten a minute'", StringComparison.Ordinal) && d.Line == 3 && !d.IsWarning);
    }

    [Fact]
    public void Compile_AskFields_Parsed()
    {
        var policy = Compile("""
            rules:
              - id: a
                effect: ask
                approvers: [leads, owners]
                timeout: 15m
                mode: defer
                two_person: true
            """);
        var e = policy.Rules[0].Entry;
        Assert.Equal(["leads", "owners"], e.Approvers);
        Assert.Equal(TimeSpan.FromMinutes(15), e.Timeout);
        Assert.Equal(AskMode.Defer, e.Mode);
        Assert.True(e.TwoPerson);
        Assert.Equal(new SourceSpan(PolicyFile, 2, 5), e.At);
    }

    [Fact]
    public void Compile_NoFiles_Reported()
    {
        var result = PolicyCompiler.Compile([], (_, _) => null, PolicyConditions.Factory);
        Assert.False(result.Success);
        Assert.Contains(result.Diagnostics, d => d.Message == "no policy files found");
    }
}
