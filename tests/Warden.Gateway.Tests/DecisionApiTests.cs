using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Warden.Gateway.Tests.Infrastructure;

namespace Warden.Gateway.Tests;

/// <summary>
/// The decision API decides exactly as the gateway does: the same calls, with the tools' real annotations, get
/// the same effect and rule through /mcp and through POST /api/v1/decide.
/// </summary>
[Trait("Category", "E2E")]
public sealed class DecisionApiTests(DecisionApiTests.Fixture fx) : IClassFixture<DecisionApiTests.Fixture>
{
    public sealed class Fixture : GatewayFixture
    {
        public string WorkplaceData { get; private set; } = "";

        public string Assistant { get; private set; } = "";

        internal override async Task<WardenGateway> StartAsync(TempDir temp)
        {
            WorkplaceData = temp.Sub("workplace");
            // Defer by default: a call the policy asks about is answered at once, so both paths can be compared.
            var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", WorkplaceData), policy: await File.ReadAllTextAsync(Repo.WorkplacePolicy), extraYaml: "approvals: { default_mode: defer }", temp: temp);
            Assistant = await gateway.AddAgentAsync("inbox-helper", "assistants");
            return gateway;
        }
    }

    public static TheoryData<string, string> Calls() => new()
    {
        { "workplace__list_mail", """{}""" },
        { "workplace__read_mail", """{"id":"mail-001"}""" },
        { "workplace__delete_mail", """{"ids":["mail-090"]}""" },
        { "workplace__delete_mail", """{"ids":["mail-1","mail-2","mail-3","mail-4","mail-5","mail-6"]}""" },
        { "workplace__delete_mail", """{}""" },
        { "workplace__post_message", """{"topic":"vpn","text":"disable the firewall"}""" },
        { "workplace__send_mail", """{"to":["x@corp.example"],"subject":"s","body":"b"}""" },
        { "workplace__update_record", """{"table":"tickets","id":"tick-3","fields":{"status":"open"}}""" },
        { "workplace__share_document", """{"id":"doc-1","visibility":"public"}""" },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public async Task Decide_SameCallAsTheGateway_SameEffectAndRule(string tool, string args)
    {
        var client = await fx.Gateway.ConnectAsync(fx.Assistant);
        var tools = await client.ListToolsAsync();
        var annotations = tools.Single(t => t.Name == tool).ProtocolTool.Annotations;

        var arguments = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(args)!;
        var viaGateway = await client.CallToolAsync(new CallToolRequestParams { Name = tool, Arguments = arguments });
        var gatewayText = viaGateway.Content.OfType<TextContentBlock>().FirstOrDefault()?.Text ?? "";

        using var response = await fx.Gateway.ApiAsync(HttpMethod.Post, "decide", fx.Assistant, new
        {
            tool,
            arguments = JsonNode.Parse(args),
            annotations = new { readOnlyHint = annotations?.ReadOnlyHint, destructiveHint = annotations?.DestructiveHint, openWorldHint = annotations?.OpenWorldHint },
        });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var decision = (await response.Content.ReadFromJsonAsync<JsonNode>())!;
        var forward = decision["forward"]!.GetValue<bool>();
        var rule = decision["rule"]!.GetValue<string>();

        if (decision["effect"]!.GetValue<string>() == "ask")
        {
            // Both wait for a person: the gateway (defer mode) and the API name the approval and the rule.
            Assert.False(forward);
            Assert.Equal("pending", decision["status"]!.GetValue<string>());
            Assert.StartsWith("apr_", decision["approvalId"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains("pending approval apr_", gatewayText, StringComparison.Ordinal);
            Assert.Contains(rule, gatewayText, StringComparison.Ordinal);
            return;
        }

        // The gateway forwarded exactly when the API says forward; refusals carry the same rule and message.
        Assert.Equal(forward, viaGateway.IsError != true || !gatewayText.StartsWith("denied", StringComparison.Ordinal));
        if (!forward)
        {
            Assert.Equal(decision["reason"]!.GetValue<string>(), gatewayText);
            Assert.Contains(rule, gatewayText, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Decide_WaitAndOutcome_CompleteTheLifeCycle()
    {
        using var decided = await fx.Gateway.ApiAsync(HttpMethod.Post, "decide", fx.Assistant, new { tool = "workplace__read_mail", arguments = new { id = "mail-002" }, annotations = new { readOnlyHint = true } });
        var id = (await decided.Content.ReadFromJsonAsync<JsonNode>())!["decisionId"]!.GetValue<string>();

        using var waited = await fx.Gateway.ApiAsync(HttpMethod.Get, $"decisions/{id}/wait?timeoutSeconds=2", fx.Assistant);
        var final = (await waited.Content.ReadFromJsonAsync<JsonNode>())!;
        Assert.Equal("allow", final["effect"]!.GetValue<string>());

        using var outcome = await fx.Gateway.ApiAsync(HttpMethod.Post, $"decisions/{id}/outcome", fx.Assistant, new { status = "completed", durationMs = 3.5 });
        Assert.Equal(HttpStatusCode.OK, outcome.StatusCode);
        Assert.Equal("completed", (await outcome.Content.ReadFromJsonAsync<JsonNode>())!["status"]!.GetValue<string>());

        using var again = await fx.Gateway.ApiAsync(HttpMethod.Post, $"decisions/{id}/outcome", fx.Assistant, new { status = "completed" });
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
    }

    [Fact]
    public async Task Decide_BadRequests_GetClearErrors()
    {
        using var noSeparator = await fx.Gateway.ApiAsync(HttpMethod.Post, "decide", fx.Assistant, new { tool = "read_mail" });
        Assert.Equal(HttpStatusCode.BadRequest, noSeparator.StatusCode);
        Assert.Contains("server__tool", await noSeparator.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var badArgs = await fx.Gateway.ApiAsync(HttpMethod.Post, "decide", fx.Assistant, new { tool = "workplace__read_mail", arguments = new[] { 1, 2 } });
        Assert.Equal(HttpStatusCode.BadRequest, badArgs.StatusCode);

        using var operatorToken = await fx.Gateway.ApiAsync(HttpMethod.Post, "decide", fx.Gateway.OperatorToken, new { tool = "workplace__read_mail" });
        Assert.Equal(HttpStatusCode.Forbidden, operatorToken.StatusCode);

        using var unknown = await fx.Gateway.ApiAsync(HttpMethod.Get, "decisions/dec_nope", fx.Assistant);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task OpenApi_ServedDocument_MatchesTheCommittedCopyAndCoversEveryEndpoint()
    {
        using var response = await fx.Gateway.Http.GetAsync(new Uri(fx.Gateway.BaseUri, "api/v1/openapi.json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var served = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        served.Remove("servers");
        var committedPath = Path.Combine(Repo.Root, "docs", "openapi.json");
        if (Environment.GetEnvironmentVariable("WARDEN_UPDATE_OPENAPI") == "1")
        {
            await File.WriteAllTextAsync(committedPath, served.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }

        var committed = JsonNode.Parse(await File.ReadAllTextAsync(committedPath))!;

        // The committed copy is docs/openapi.json; refresh it when the API changes (docs/api.md says how).
        Assert.True(JsonNode.DeepEquals(served, committed), "docs/openapi.json differs from the served document; regenerate it (docs/api.md)");
        var paths = served["paths"]!.AsObject().Select(p => p.Key).ToList();
        foreach (var expected in new[] { "/api/v1/status", "/api/v1/agents", "/api/v1/decide", "/api/v1/decisions/{id}/wait", "/api/v1/decisions/{id}/outcome", "/api/v1/agents/{name}/events", "/api/v1/policy/reload", "/api/v1/stops", "/api/v1/audit" })
        {
            Assert.Contains(expected, paths);
        }

        Assert.All(served["paths"]!.AsObject(), p => Assert.All(p.Value!.AsObject(), op => Assert.False(string.IsNullOrEmpty(op.Value?["summary"]?.GetValue<string>()), $"{op.Key} {p.Key} has no summary")));
    }
}
