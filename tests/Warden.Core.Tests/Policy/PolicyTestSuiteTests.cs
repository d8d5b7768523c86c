using Warden.Core.Policy;
using static Warden.Core.Tests.Policy.PolicyKit;

namespace Warden.Core.Tests.Policy;

public class PolicyTestSuiteTests
{
    private static readonly CompiledPolicy Policy = Compile("""
        agents:
          bot: { groups: [assistants] }
        classes:
          mail: { delete: [mutating, destructive] }
        rules:
          - id: reads
            match: { class: read_only }
            effect: allow
          - id: bulk
            match: { server: mail, tool: delete }
            when: size(args.ids) > 2
            effect: ask
          - id: docs
            match: { resource: "docs://**" }
            effect: allow
          - id: labelled
            when: '"secret" in context.session.labels'
            effect: deny
        """);

    [Fact]
    public void Parse_Cases_BuildCalls()
    {
        var suite = PolicyTestSuite.Parse("t.test.yaml", """
            policy: ../p
            cases:
              - name: read
                agent: bot
                groups: [ops]
                tool: mail__list
                classes: [read_only]
                labels: [secret]
                expect: { effect: allow, rule: reads }
              - name: resource
                server: docs
                resource: docs://a/b
                expect: { effect: allow }
              - name: explicit server with separator in the name
                server: mail
                tool: a__b
                args: { ids: [1, 2, 3], n: 1.5, flag: true, s: "007", none: null }
                expect: { effect: error }
            """);
        Assert.Empty(suite.Diagnostics);
        Assert.Equal("../p", suite.PolicyPath);
        Assert.Equal(3, suite.Cases.Count);

        var read = suite.Cases[0];
        Assert.Equal(("bot", "mail", "list", McpOperation.ToolCall), (read.Call.Agent.Name, read.Call.Server, read.Call.Target, read.Call.Operation));
        Assert.Equal(["ops"], read.Call.Agent.Groups);
        Assert.Equal(ToolClasses.ReadOnly, read.Call.AnnotatedClasses);
        Assert.Equal(["secret"], read.Call.SessionLabels);
        Assert.Equal(("allow", "reads", 3), (read.ExpectedEffect, read.ExpectedRule, read.Line));

        var resource = suite.Cases[1];
        Assert.Equal((McpOperation.ResourceRead, "docs", "docs://a/b", "test-agent"), (resource.Call.Operation, resource.Call.Server, resource.Call.Target, resource.Call.Agent.Name));
        Assert.Null(resource.ExpectedRule);

        var args = suite.Cases[2].Call.Arguments!;
        Assert.Equal("a__b", suite.Cases[2].Call.Target);
        Assert.Equal(System.Text.Json.JsonValueKind.Array, args["ids"].ValueKind);
        Assert.Equal(1.5, args["n"].GetDouble());
        Assert.True(args["flag"].GetBoolean());
        Assert.Equal("007", args["s"].GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, args["none"].ValueKind);

        // An unannotated tool in a test gets MCP's defaults: the most dangerous kind.
        Assert.Equal(ToolClasses.Mutating | ToolClasses.Destructive | ToolClasses.Outbound, suite.Cases[2].Call.AnnotatedClasses);
    }

    [Fact]
    public void Run_PassingAndFailingCases_Reported()
    {
        var suite = PolicyTestSuite.Parse("t.test.yaml", """
            cases:
              - name: read passes
                tool: mail__list
                classes: [read_only]
                expect: { effect: allow, rule: reads }
              - name: bulk passes
                tool: mail__delete
                args: { ids: [a, b, c] }
                expect: { effect: ask, rule: bulk }
              - name: error passes
                tool: mail__delete
                args: {}
                expect: { effect: error, rule: bulk }
              - name: labels pass
                tool: mail__list
                classes: [read_only]
                labels: [secret]
                expect: { effect: deny, rule: labelled }
              - name: wrong effect fails
                tool: mail__delete
                args: { ids: [a] }
                expect: { effect: allow }
              - name: wrong rule fails
                tool: mail__list
                classes: [read_only]
                expect: { effect: allow, rule: other }
            """);
        Assert.Empty(suite.Diagnostics);
        var results = suite.Run(Policy).ToList();
        Assert.Equal([true, true, true, true, false, false], results.Select(r => r.Passed));
        Assert.Equal("expected allow, got deny by default (no rule allows this call) [t.test.yaml:19]", results[4].Detail);
        Assert.StartsWith("expected allow by other, got allow by reads", results[5].Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cases:\n  - tool: mail__x\n    expect: { effect: permit }\n", "expect.effect must be allow, deny, ask, shadow or error")]
    [InlineData("cases:\n  - tool: x\n    expect: { effect: allow }\n", "name the server")]
    [InlineData("cases:\n  - tool: mail__x\n    method: tools/list\n    expect: { effect: allow }\n", "unknown method 'tools/list'")]
    [InlineData("cases:\n  - tool: mail__x\n    args: [1]\n    expect: { effect: allow }\n", "args must be a mapping")]
    [InlineData("cases:\n  - tool: mail__x\n    expct: { effect: allow }\n", "did you mean 'expect'?")]
    [InlineData("policy: .\n", "needs cases")]
    public void Parse_Mistakes_Reported(string yaml, string contains)
    {
        var suite = PolicyTestSuite.Parse("t.test.yaml", yaml);
        Assert.Contains(suite.Diagnostics, d => d.ToString().Contains(contains, StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_CustomSeparator_SplitsTool()
    {
        var suite = PolicyTestSuite.Parse("t.test.yaml", "separator: '.'\ncases:\n  - tool: mail.delete_x\n    expect: { effect: deny }\n");
        Assert.Equal(("mail", "delete_x"), (suite.Cases[0].Call.Server, suite.Cases[0].Call.Target));
    }
}
