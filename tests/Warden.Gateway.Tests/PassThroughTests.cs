using System.Text.Json;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Warden.Gateway.Tests.Infrastructure;

namespace Warden.Gateway.Tests;

/// <summary>
/// The proxy, seen by the official C# SDK client: the sample workplace server and the npm server-everything
/// as stdio upstreams behind one gateway, under a policy that allows everything.
/// </summary>
[Trait("Category", "E2E")]
public sealed class PassThroughTests(PassThroughTests.Fixture fx) : IClassFixture<PassThroughTests.Fixture>
{
    public sealed class Fixture : GatewayFixture
    {
        public string WorkplaceData { get; private set; } = "";

        public string Token { get; private set; } = "";

        internal override async Task<WardenGateway> StartAsync(TempDir temp)
        {
            WorkplaceData = temp.Sub("workplace");
            var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", WorkplaceData) + TestUpstreams.Everything(), temp: temp);
            Token = await gateway.AddAgentAsync("pass-agent");
            return gateway;
        }
    }

    private Task<McpClient> ConnectAsync() => fx.Gateway.ConnectAsync(fx.Token);

    [Fact]
    public async Task ListTools_TwoUpstreams_NamesArePrefixedWithServerAndAnnotationsKept()
    {
        var client = await ConnectAsync();
        var tools = (await client.ToolsAsync()).ToDictionary(t => t.Name);

        Assert.All(tools.Keys, name => Assert.True(name.StartsWith("workplace__", StringComparison.Ordinal) || name.StartsWith("everything__", StringComparison.Ordinal), name));
        Assert.Contains("everything__echo", tools.Keys);
        Assert.Contains("everything__get-env", tools.Keys);

        var list = tools["workplace__list_mail"];
        Assert.True(list.Annotations?.ReadOnlyHint);
        var delete = tools["workplace__delete_mail"];
        Assert.True(delete.Annotations?.DestructiveHint);
        Assert.False(delete.Annotations?.ReadOnlyHint ?? false);
        Assert.True(tools["workplace__send_mail"].Annotations?.OpenWorldHint);
        Assert.True(tools["everything__trigger-long-running-operation"].Annotations?.ReadOnlyHint);

        // Schemas come through untouched.
        Assert.True(delete.InputSchema.GetProperty("properties").TryGetProperty("ids", out _));
        Assert.Equal(JsonValueKind.Object, tools["everything__get-structured-content"].OutputSchema!.Value.ValueKind);
        Assert.Equal("warden", client.ServerInfo?.Name);
    }

    [Fact]
    public async Task CallTool_Text_PassesThrough()
    {
        var client = await ConnectAsync();
        var result = await client.CallAsync("everything__echo", new { message = "hello through warden" });
        Assert.NotEqual(true, result.IsError);
        Assert.Contains("hello through warden", result.Text());
    }

    [Fact]
    public async Task CallTool_ImageAndResourceLinks_PassThroughUnchanged()
    {
        var client = await ConnectAsync();
        var image = await client.CallAsync("everything__get-tiny-image");
        var block = Assert.Single(image.Content.OfType<ImageContentBlock>());
        Assert.Equal("image/png", block.MimeType);
        Assert.True(block.Data.Length > 100);

        var links = await client.CallAsync("everything__get-resource-links", new { count = 2 });
        var linkBlocks = links.Content.OfType<ResourceLinkBlock>().ToList();
        Assert.Equal(2, linkBlocks.Count);
        Assert.All(linkBlocks, l => Assert.StartsWith("demo://", l.Uri, StringComparison.Ordinal));
    }

    [Fact]
    public async Task CallTool_StructuredContent_PassesThrough()
    {
        var client = await ConnectAsync();
        var result = await client.CallAsync("everything__get-structured-content", new { location = "Chicago" });
        Assert.NotNull(result.StructuredContent);
        Assert.Equal(36, result.StructuredContent!.Value.GetProperty("temperature").GetInt32());
        Assert.Equal("Light rain / drizzle", result.StructuredContent.Value.GetProperty("conditions").GetString());
    }

    [Fact]
    public async Task CallTool_UpstreamToolError_ComesBackAsIsError()
    {
        var client = await ConnectAsync();
        var result = await client.CallAsync("workplace__read_mail", new { id = "mail-999" });
        Assert.True(result.IsError);
        Assert.Contains("mail-999", result.Text());

        var ok = await client.CallAsync("workplace__read_mail", new { id = "mail-002" });
        Assert.NotEqual(true, ok.IsError);
        Assert.Equal("mail-002", ok.Json().GetProperty("id").GetString());
    }

    [Fact]
    public async Task ReadResource_ListedAndTemplated_ComeFromTheUpstream()
    {
        var client = await ConnectAsync();
        var resources = await client.ListResourcesAsync();
        Assert.NotEmpty(resources);

        var listed = resources.First(r => r.Uri.StartsWith("demo://", StringComparison.Ordinal));
        var read = await client.ReadResourceAsync(listed.Uri);
        Assert.NotEmpty(read.Contents);
        Assert.Equal(listed.Uri, read.Contents[0].Uri);

        var templated = await client.ReadResourceAsync("demo://resource/dynamic/text/1");
        var text = Assert.IsType<TextResourceContents>(Assert.Single(templated.Contents));
        Assert.Equal("demo://resource/dynamic/text/1", text.Uri);
        Assert.False(string.IsNullOrEmpty(text.Text));
    }

    [Fact]
    public async Task Prompts_ListAndGet_PassThroughWithPrefix()
    {
        var client = await ConnectAsync();
        var prompts = await client.ListPromptsAsync();
        var names = prompts.Select(p => p.Name).ToList();
        Assert.Contains("everything__simple-prompt", names);
        Assert.Contains("everything__args-prompt", names);

        var simple = await client.GetPromptAsync("everything__simple-prompt");
        Assert.Contains("simple prompt", Assert.IsType<TextContentBlock>(Assert.Single(simple.Messages).Content).Text, StringComparison.OrdinalIgnoreCase);

        var withArgs = await client.GetPromptAsync("everything__args-prompt", new Dictionary<string, object?> { ["city"] = "Lyon" });
        Assert.Contains("Lyon", string.Join(" ", withArgs.Messages.Select(m => (m.Content as TextContentBlock)?.Text)));
    }

    [Fact]
    public async Task CallTool_WithProgress_UpdatesArriveInOrderAndAllBeforeTheResult()
    {
        RecordingClientTransport? recorder = null;
        var client = await fx.Gateway.ConnectAsync(fx.Token, wrap: t => recorder = new RecordingClientTransport(t));

        // Several runs: a race between the last update and the answer shows up as a flaky failure here.
        for (var run = 0; run < 3; run++)
        {
            recorder!.Received.Clear();
            var progress = new ProgressLog();
            using var timeout = new CancellationTokenSource(McpTest.CallTimeout);
            var result = await client.CallToolAsync(
                "everything__trigger-long-running-operation",
                new Dictionary<string, object?> { ["duration"] = 0.5, ["steps"] = 5 },
                progress,
                cancellationToken: timeout.Token);
            Assert.Contains("Long running operation completed", result.Text());

            // On the wire: five updates, in order, then the answer.
            var wire = recorder.Received.ToList();
            var updates = wire.Select((m, i) => (m, i)).Where(x => x.m is JsonRpcNotification { Method: NotificationMethods.ProgressNotification }).ToList();
            var answer = wire.FindIndex(m => m is JsonRpcResponse r && r.Result?.ToJsonString().Contains("Long running operation completed", StringComparison.Ordinal) == true);
            Assert.True(answer >= 0, "the answer was recorded");
            Assert.Equal([1d, 2, 3, 4, 5], updates.Select(u => ((JsonRpcNotification)u.m).Params!["progress"]!.GetValue<double>()));
            Assert.All(updates, u => Assert.True(u.i < answer, $"update at {u.i} came after the answer at {answer}"));

            // The caller's IProgress sees them too. Not necessarily all: the C# SDK client dispatches incoming
            // messages concurrently and unregisters the progress handler when the answer is in, so an update
            // that was on the wire before the answer can still miss the IProgress (seen with the last one).
            Assert.NotEmpty(progress.Values);
            Assert.All(progress.Values, v => Assert.InRange(v.Progress, 1f, 5f));
            Assert.All(progress.Values, v => Assert.Equal(5f, v.Total));
        }
    }

    [Fact]
    public async Task CallTool_CancelledByClient_UpstreamIsCancelledAndWardenKeepsServing()
    {
        var client = await ConnectAsync();
        var cancelledBefore = CancelledSlowOperations();
        var progress = new ProgressLog();
        using var cts = new CancellationTokenSource();
        var call = client.CallToolAsync(
            "workplace__slow_operation",
            new Dictionary<string, object?> { ["seconds"] = 120, ["steps"] = 240 },
            progress,
            cancellationToken: cts.Token).AsTask();

        // The call is running upstream once its first progress update is back.
        await Wait.UntilAsync(() => progress.Values.Count > 0 || call.IsCompleted, "the slow operation to report progress");
        Assert.False(call.IsCompleted, "the slow operation finished early");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);

        // The C# SDK client cancels by dropping the POST that carries the call; Warden takes that as a
        // cancellation, sends notifications/cancelled upstream, and the upstream logs the call as cancelled.
        await WaitForCancelledSlowOperationAsync(cancelledBefore + 1);
        var line = TestUpstreams.OperationsLog(fx.WorkplaceData).Last(o => o["tool"]!.GetValue<string>() == "slow_operation");
        Assert.True(line["detail"]!["stepsCompleted"]!.GetValue<int>() < 240);

        // Warden keeps serving, on the same session and on others.
        var after = await client.CallAsync("workplace__list_mail", new { limit = 1 });
        Assert.NotEqual(true, after.IsError);
        var other = await ConnectAsync();
        Assert.Contains("still here", (await other.CallAsync("everything__echo", new { message = "still here" })).Text());
    }

    [Fact]
    public async Task CallTool_CancelledNotification_UpstreamIsCancelledAndWardenKeepsServing()
    {
        var cancelledBefore = CancelledSlowOperations();
        // The spec's way: the client sends notifications/cancelled for its request id.
        var client = await ConnectAsync();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var onProgress = client.RegisterNotificationHandler(NotificationMethods.ProgressNotification, (n, _) =>
        {
            if (n.Params?["progressToken"]?.GetValue<string>() == "explicit-cancel")
            {
                started.TrySetResult();
            }

            return ValueTask.CompletedTask;
        });

        var id = new RequestId("explicit-cancel-call");
        var request = new JsonRpcRequest
        {
            Id = id,
            Method = RequestMethods.ToolsCall,
            Params = JsonSerializer.SerializeToNode(
                new CallToolRequestParams
                {
                    Name = "workplace__slow_operation",
                    Arguments = McpTest.Args(new { seconds = 120, steps = 240 }),
                    Meta = new System.Text.Json.Nodes.JsonObject { ["progressToken"] = "explicit-cancel" },
                },
                McpJsonUtilities.DefaultOptions),
        };
        using var guard = new CancellationTokenSource(McpTest.CallTimeout);
        var call = client.SendRequestAsync(request, guard.Token);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        await client.SendNotificationAsync(
            NotificationMethods.CancelledNotification,
            new CancelledNotificationParams { RequestId = id, Reason = "test cancels" },
            cancellationToken: guard.Token);

        // Warden cancels the upstream call at once. (The SDK server sends no answer to a cancelled request,
        // so the client's POST stays open until it gives up; the test drops it.)
        await WaitForCancelledSlowOperationAsync(cancelledBefore + 1);
        await guard.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.NotEqual(true, (await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError);
    }

    private int CancelledSlowOperations() =>
        TestUpstreams.OperationsLog(fx.WorkplaceData).Count(o => o["tool"]!.GetValue<string>() == "slow_operation" && o["outcome"]!.GetValue<string>() == "cancelled");

    private Task WaitForCancelledSlowOperationAsync(int count) =>
        Wait.UntilAsync(() => CancelledSlowOperations() >= count, "operations.log to show slow_operation cancelled");

    [Fact]
    public async Task CallTool_UnknownTool_IsAJsonRpcError()
    {
        var client = await ConnectAsync();
        var ex = await Assert.ThrowsAsync<McpProtocolException>(() => client.CallAsync("workplace__no_such_tool"));
        Assert.Equal(McpErrorCode.InvalidParams, ex.ErrorCode);
        Assert.Contains("no_such_tool", ex.Message);

        var unprefixed = await Assert.ThrowsAsync<McpProtocolException>(() => client.CallAsync("list_mail"));
        Assert.Equal(McpErrorCode.InvalidParams, unprefixed.ErrorCode);

        Assert.NotEqual(true, (await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError);
    }
}
