using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Warden.Samples.Tests;

public sealed class WorkplaceServerTests
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Lists_every_tool_with_honest_annotations()
    {
        await using var server = await WorkplaceServer.StartAsync();

        var tools = (await server.Client.ListToolsAsync()).ToDictionary(t => t.Name, t => t.ProtocolTool.Annotations);

        // name -> (readOnly, destructive, idempotent, openWorld)
        var expected = new Dictionary<string, (bool, bool, bool, bool)>
        {
            ["list_mail"] = (true, false, true, false),
            ["read_mail"] = (true, false, true, false),
            ["delete_mail"] = (false, true, true, false),
            ["send_mail"] = (false, false, false, true),
            ["list_posts"] = (true, false, true, true),
            ["post_message"] = (false, false, false, true),
            ["list_documents"] = (true, false, true, false),
            ["read_document"] = (true, false, true, false),
            ["share_document"] = (false, false, true, true),
            ["query_records"] = (true, false, true, false),
            ["update_record"] = (false, false, true, false),
            ["slow_operation"] = (true, false, true, false),
        };

        Assert.Equal(expected.Keys.Order(), tools.Keys.Order());
        foreach (var (name, (readOnly, destructive, idempotent, openWorld)) in expected)
        {
            var a = tools[name];
            Assert.NotNull(a);
            Assert.Equal((name, readOnly, destructive, idempotent, openWorld),
                (name, a.ReadOnlyHint ?? false, a.DestructiveHint ?? true, a.IdempotentHint ?? false, a.OpenWorldHint ?? true));
        }
    }

    [Fact]
    public async Task Seeds_deterministic_demo_data()
    {
        await using var server = await WorkplaceServer.StartAsync();

        var all = WorkplaceServer.Json(await server.CallAsync("list_mail", new { folder = "all", limit = 500 }));
        Assert.Equal(200, (int)all["total"]!);

        var doc = WorkplaceServer.Json(await server.CallAsync("read_document", new { id = "doc-3" }));
        Assert.True((bool)doc["confidential"]!);
        Assert.Contains("aws_secret_access_key", (string)doc["content"]!, StringComparison.Ordinal);

        foreach (var file in new[] { "mail.json", "forum.json", "documents.json", "records.json" })
        {
            Assert.True(File.Exists(Path.Combine(server.DataDirectory, file)), file);
        }
    }

    [Fact]
    public async Task Delete_mail_removes_it_and_logs_the_warden_meta()
    {
        await using var server = await WorkplaceServer.StartAsync();
        var meta = new JsonObject { ["warden/seq"] = 42, ["warden/session"] = "s-1", ["unrelated"] = "x" };

        var result = await server.CallAsync("delete_mail", new { ids = new[] { "mail-001", "mail-002", "mail-nope" } }, meta);

        Assert.NotEqual(true, result.IsError);
        var body = WorkplaceServer.Json(result);
        Assert.Equal(["mail-001", "mail-002"], body["deleted"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(["mail-nope"], body["notFound"]!.AsArray().Select(n => (string)n!));

        // The log line is on disk by the time the response arrives: no waiting.
        var line = Assert.Single(server.ReadLog(), l => (string?)l["tool"] == "delete_mail");
        Assert.Equal(42, (int)line["seq"]!);
        Assert.Equal("ok", (string?)line["outcome"]);
        Assert.Equal("s-1", (string?)line["meta"]!["warden/session"]);
        Assert.Null(line["meta"]!["unrelated"]);
        Assert.Equal(3, line["arguments"]!["ids"]!.AsArray().Count);

        var read = await server.CallAsync("read_mail", new { id = "mail-001" });
        Assert.True(read.IsError);
        Assert.Equal(198, server.ReadDataFile("mail.json").AsArray().Count);
        Assert.Equal("error", (string?)server.ReadLog().Last()["outcome"]);
    }

    [Fact]
    public async Task Send_post_share_and_update_are_logged_and_persisted()
    {
        await using var server = await WorkplaceServer.StartAsync();

        await server.CallAsync("send_mail", new { to = new[] { "x@example.org" }, cc = new[] { "y@example.org" }, subject = "Hi", body = "Hello" },
            new JsonObject { ["warden/seq"] = 1 });
        await server.CallAsync("post_message", new { topic = "build-failures", text = "Restart the runners." },
            new JsonObject { ["warden/seq"] = 2 });
        await server.CallAsync("share_document", new { id = "doc-3", visibility = "public" }, new JsonObject { ["warden/seq"] = 3 });
        await server.CallAsync("update_record", new { table = "tickets", id = "tick-1", fields = new { status = "closed" } },
            new JsonObject { ["warden/seq"] = 4 });

        var log = server.ReadLog();
        Assert.Equal(["send_mail", "post_message", "share_document", "update_record"], log.Select(l => (string)l["tool"]!));
        Assert.Equal([1, 2, 3, 4], log.Select(l => (int)l["seq"]!));
        Assert.All(log, l => Assert.Equal("ok", (string?)l["outcome"]));
        Assert.Equal("x@example.org", (string?)log[0]["arguments"]!["to"]![0]);
        Assert.True((bool)log[2]["detail"]!["confidential"]!);

        Assert.Contains(server.ReadDataFile("mail.json").AsArray(), m => (string?)m!["subject"] == "Hi" && (string?)m["folder"] == "sent");
        Assert.Contains(server.ReadDataFile("forum.json").AsArray(), p => (string?)p!["text"] == "Restart the runners.");
        Assert.Contains(server.ReadDataFile("documents.json").AsArray(), d => (string?)d!["id"] == "doc-3" && (string?)d["visibility"] == "public");
        Assert.Contains(server.ReadDataFile("records.json")["tickets"]!.AsArray(), r => (string?)r!["id"] == "tick-1" && (string?)r["status"] == "closed");
    }

    [Fact]
    public async Task Sixty_four_concurrent_deletes_are_all_applied_and_logged()
    {
        await using var server = await WorkplaceServer.StartAsync();

        var calls = Enumerable.Range(1, 64).Select(i => server.CallAsync(
            "delete_mail", new { ids = new[] { $"mail-{i:D3}" } }, new JsonObject { ["warden/seq"] = i }));
        var results = await Task.WhenAll(calls);

        Assert.All(results, r => Assert.NotEqual(true, r.IsError));
        var deletes = server.ReadLog().Where(l => (string?)l["tool"] == "delete_mail").ToList();
        Assert.Equal(Enumerable.Range(1, 64), deletes.Select(l => (int)l["seq"]!).Order());
        Assert.All(deletes, l => Assert.Single(l["detail"]!["deleted"]!.AsArray()));

        var mails = server.ReadDataFile("mail.json").AsArray();
        Assert.Equal(200 - 64, mails.Count);
        Assert.DoesNotContain(mails, m => int.Parse(((string)m!["id"]!)[5..]) <= 64);
        Assert.Empty(Directory.GetFiles(server.DataDirectory, "*.tmp"));
    }

    [Fact]
    public async Task Changes_survive_a_restart_without_reseeding()
    {
        string dir;
        await using (var first = await WorkplaceServer.StartAsync(Directory.CreateTempSubdirectory("workplace-test-").FullName))
        {
            dir = first.DataDirectory;
            await first.CallAsync("delete_mail", new { ids = new[] { "mail-010" } });
            await first.Client.DisposeAsync();

            await using var second = await WorkplaceServer.StartAsync(dir);
            var all = WorkplaceServer.Json(await second.CallAsync("list_mail", new { folder = "all", limit = 500 }));
            Assert.Equal(199, (int)all["total"]!);
            Assert.Equal(2, second.ReadLog().Count);
        }
    }

    [Fact]
    public async Task Slow_operation_reports_progress_for_each_step()
    {
        await using var server = await WorkplaceServer.StartAsync();
        var progress = new ConcurrentQueue<JsonNode>();
        await using var registration = server.Client.RegisterNotificationHandler(NotificationMethods.ProgressNotification, (n, _) =>
        {
            progress.Enqueue(n.Params!.DeepClone());
            return ValueTask.CompletedTask;
        });

        using var cts = new CancellationTokenSource(CallTimeout);
        var result = await server.CallAsync("slow_operation", new { seconds = 0.5, steps = 5 },
            new JsonObject { ["progressToken"] = "p-1" }, cts.Token);

        Assert.True((bool)WorkplaceServer.Json(result)["completed"]!);
        // Notifications and the response travel independently through the client, so the last one may trail.
        for (int i = 0; i < 100 && progress.Count < 5; i++)
        {
            await Task.Delay(20);
        }

        var values = progress.ToArray();
        Assert.Equal([1.0, 2, 3, 4, 5], values.Select(p => (double)p["progress"]!).Order());
        Assert.All(values, p => Assert.Equal("p-1", (string?)p["progressToken"]));
        Assert.All(values, p => Assert.Equal(5, (double)p["total"]!));
        Assert.Equal("ok", (string?)Assert.Single(server.ReadLog())["outcome"]);
    }

    [Fact]
    public async Task Cancelling_slow_operation_stops_it_and_logs_cancelled()
    {
        await using var server = await WorkplaceServer.StartAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(400));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => server.CallAsync("slow_operation", new { seconds = 30, steps = 30 }, new JsonObject { ["warden/seq"] = 9 }, cts.Token));

        var log = await server.WaitForLogAsync(l => l.Count > 0);
        var line = Assert.Single(log);
        Assert.Equal("cancelled", (string?)line["outcome"]);
        Assert.Equal(9, (int)line["seq"]!);
        Assert.True((int)line["detail"]!["stepsCompleted"]! < 30);
    }

    [Fact]
    public async Task Slow_ms_delays_mutations_and_a_cancelled_delete_changes_nothing()
    {
        await using var server = await WorkplaceServer.StartAsync(slowMs: 3000);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => server.CallAsync("delete_mail", new { ids = new[] { "mail-005" } }, new JsonObject { ["warden/seq"] = 5 }, cts.Token));

        var line = Assert.Single(await server.WaitForLogAsync(l => l.Count > 0));
        Assert.Equal("cancelled", (string?)line["outcome"]);
        var mail = WorkplaceServer.Json(await server.CallAsync("read_mail", new { id = "mail-005" }, ct: new CancellationTokenSource(CallTimeout).Token));
        Assert.Equal("mail-005", (string?)mail["id"]);
    }

    [Fact]
    public async Task Invalid_arguments_are_tool_errors_not_protocol_errors()
    {
        await using var server = await WorkplaceServer.StartAsync();

        var result = await server.CallAsync("query_records", new { table = "nope" });

        Assert.True(result.IsError);
        Assert.Contains("Unknown table", ((TextContentBlock)result.Content[0]).Text, StringComparison.Ordinal);
        await Assert.ThrowsAsync<McpProtocolException>(() => server.CallAsync("no_such_tool"));
    }
}
