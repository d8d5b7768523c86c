using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using ModelContextProtocol.Protocol;
using Warden.Core;
using Warden.Core.Audit;
using Warden.Core.Pipeline;
using Warden.Core.Storage;
using Warden.Gateway.Audit;
using Warden.Gateway.Configuration;
using Warden.Gateway.Mcp;

namespace Warden.Gateway.Tests.Audit;

public sealed class AuditingCallDeciderTests : IAsyncDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "warden-audit-decider", Guid.NewGuid().ToString("N"));
    private AuditLog? _audit;

    /// <summary>A decider that always decides the same, standing in for the pipeline (stops, policy, limits).</summary>
    private sealed class Fixed(Effect effect) : ICallDecider
    {
        public ValueTask<Permit> DecideAsync(CallContext call, CancellationToken cancellationToken, Warden.Gateway.Approvals.IWaitingCaller? caller = null)
        {
            var d = new Decision(effect, "the-rule", "because", "v7");
            return ValueTask.FromResult(new Permit(d, effect == Effect.Allow, d.AgentMessage));
        }

        public ValueTask<Permit> AdmitAsync(CallContext call, Decision approved, CancellationToken cancellationToken) =>
            ValueTask.FromResult(new Permit(approved, forward: true, "allowed"));
    }

    private AuditingCallDecider Decider(Effect effect, string onFailure = "deny", string writeTimeout = "2s")
    {
        Directory.CreateDirectory(_folder);
        var config = ConfigLoader.Parse($"audit: {{ on_failure: {onFailure}, write_timeout: {writeTimeout}, mask_arguments: [pin] }}\n", "warden.yaml", _folder);
        _audit = new AuditLog(config, TimeProvider.System, NullLoggerFactory.Instance);
        return new AuditingCallDecider(new Fixed(effect), _audit);
    }

    private static CallContext Call() => new()
    {
        Agent = new AgentIdentity("bot", ["helpers"]),
        SessionId = "bot:1",
        Operation = McpOperation.ToolCall,
        Server = "mail",
        Target = "delete_mail",
        Arguments = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>("""{"ids":["m1"],"pin":"1234"}"""),
        AnnotatedClasses = ToolClasses.Mutating | ToolClasses.Destructive,
        SessionLabels = ["confidential"],
        ReceivedAt = DateTimeOffset.UtcNow,
    };

    /// <summary>Everything recorded so far: a marker event is durable only after everything queued before it.</summary>
    private async Task<List<AuditEvent>> RecordsAsync()
    {
        await _audit!.Record(new AuditEvent { Kind = "test.flush", Actor = "test" }).Durable;
        return [.. _audit.Store.Read().Where(e => e.Kind != "test.flush")];
    }

    public async ValueTask DisposeAsync()
    {
        if (_audit is not null)
        {
            await _audit.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, true);
    }

    [Fact]
    public void Config_AuditFields_ParsedWithDefaults()
    {
        var defaults = ConfigLoader.Parse("listen: 127.0.0.1:1\n", "warden.yaml", "/tmp");
        Assert.Equal(TimeSpan.FromSeconds(2), defaults.Audit.WriteTimeout);
        Assert.Contains("password", defaults.Audit.MaskArguments);
        var set = ConfigLoader.Parse("audit: { durability: fsync, write_timeout: 750ms, mask_arguments: [pin, otp] }\n", "warden.yaml", "/tmp");
        Assert.Equal("fsync", set.Audit.Durability);
        Assert.Equal(TimeSpan.FromMilliseconds(750), set.Audit.WriteTimeout);
        Assert.Equal(["pin", "otp"], set.Audit.MaskArguments);
        Assert.ThrowsAny<Exception>(() => ConfigLoader.Parse("audit: { write_timeout: -1s }\n", "warden.yaml", "/tmp"));
        Assert.ThrowsAny<Exception>(() => ConfigLoader.Parse("audit: { mask: [x] }\n", "warden.yaml", "/tmp"));
    }

    [Fact]
    public async Task Allow_IntentDurableBeforeForward_SeqStampedAndOutcomeRecorded()
    {
        var decider = Decider(Effect.Allow);
        var permit = await decider.DecideAsync(Call(), default);
        Assert.True(permit.Forward);
        var seq = permit.Meta!["warden/seq"]!.GetValue<long>();
        var intent = _audit!.Store.Read(seq, seq).Single(); // already in the file when the permit came back
        Assert.Equal(AuditKinds.CallForwarded, intent.Kind);

        await permit.CompleteAsync(new CallToolResult { Content = [new TextContentBlock { Text = "deleted" }] }, null);
        var records = await RecordsAsync();
        var decision = records.Single(e => e.Kind == AuditKinds.Decision);
        Assert.Equal("allow|the-rule|v7|bot|bot:1|mail|delete_mail", string.Join('|', decision.Effect, decision.Rule, decision.PolicyVersion, decision.Agent, decision.Session, decision.Server, decision.Tool));
        Assert.Contains("\"groups\":[\"helpers\"]", decision.Context, StringComparison.Ordinal);
        Assert.Contains("\"labels\":[\"confidential\"]", decision.Context, StringComparison.Ordinal);
        Assert.Contains("\"annotated_classes\":[\"mutating\",\"destructive\"]", decision.Context, StringComparison.Ordinal);
        Assert.Contains("\"classes\":[]", decision.Context, StringComparison.Ordinal); // set by the policy stage, which did not run here
        Assert.DoesNotContain("1234", decision.Arguments, StringComparison.Ordinal);
        Assert.Contains(_audit.Digester.Digest("1234"), decision.Arguments, StringComparison.Ordinal);
        var outcome = records.Single(e => e.Kind == AuditKinds.CallCompleted);
        Assert.Equal("ok", outcome.Outcome);
        Assert.StartsWith("hmac:", outcome.ResultDigest, StringComparison.Ordinal);
        Assert.NotNull(outcome.DurationMicros);
        Assert.Equal(decision.Call, outcome.Call);
        Assert.True(decision.Seq < intent.Seq && intent.Seq < outcome.Seq);
    }

    [Fact]
    public async Task Deny_RecordedWithoutWaiting()
    {
        var decider = Decider(Effect.Deny);
        var permit = await decider.DecideAsync(Call(), default);
        Assert.False(permit.Forward);
        var records = await RecordsAsync();
        Assert.Equal("deny", Assert.Single(records, e => e.Kind == AuditKinds.Decision).Effect);
        Assert.DoesNotContain(records, e => e.Kind == AuditKinds.CallForwarded);
    }

    [Fact]
    public async Task Failures_Outcomes()
    {
        var decider = Decider(Effect.Allow);
        var failed = await decider.DecideAsync(Call(), default);
        await failed.CompleteAsync(null, new InvalidOperationException("upstream broke"));
        var toolError = await decider.DecideAsync(Call(), default);
        await toolError.CompleteAsync(new CallToolResult { IsError = true, Content = [] }, null);
        var cancelled = await decider.DecideAsync(Call(), default);
        await cancelled.CompleteAsync(null, new OperationCanceledException());
        var records = await RecordsAsync();
        Assert.Equal("error,tool_error", string.Join(',', records.Where(e => e.Kind == AuditKinds.CallFailed).Select(e => e.Outcome)));
        Assert.Equal("cancelled", Assert.Single(records, e => e.Kind == AuditKinds.CallCancelled).Outcome);
    }

    [Fact]
    public async Task HungStore_RefusedWithinWriteTimeout()
    {
        var decider = Decider(Effect.Allow, writeTimeout: "300ms");
        await decider.DecideAsync(Call(), default); // creates the file
        using var holder = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_audit!.Store.FilePath};Pooling=False");
        holder.Open();
        using (var begin = holder.CreateCommand())
        {
            begin.CommandText = "BEGIN EXCLUSIVE;";
            begin.ExecuteNonQuery();
        }

        var sw = Stopwatch.StartNew();
        var permit = await decider.DecideAsync(Call(), default);
        Assert.False(permit.Forward);
        Assert.InRange(sw.ElapsedMilliseconds, 250, 2000);
        Assert.Contains("could not record this call in its audit log", permit.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_folder, permit.Message, StringComparison.Ordinal); // agents learn nothing about the host
    }

    [Fact]
    public async Task OnFailureAllow_ForwardsWithoutSeq()
    {
        var decider = Decider(Effect.Allow, onFailure: "allow", writeTimeout: "300ms");
        await decider.DecideAsync(Call(), default);
        using var holder = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_audit!.Store.FilePath};Pooling=False");
        holder.Open();
        using (var begin = holder.CreateCommand())
        {
            begin.CommandText = "BEGIN EXCLUSIVE;";
            begin.ExecuteNonQuery();
        }

        var permit = await decider.DecideAsync(Call(), default);
        Assert.True(permit.Forward);
        Assert.False(permit.Meta?.ContainsKey("warden/seq") ?? false);
        using (var rollback = holder.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK;";
            rollback.ExecuteNonQuery();
        }

        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!_audit.Store.Read().Any(e => e.Kind == AuditKinds.AuditGap))
        {
            Assert.True(DateTime.UtcNow < deadline, "no audit.gap recorded");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task StoreUnavailableException_IsTheFaultType()
    {
        var decider = Decider(Effect.Allow);
        await decider.DecideAsync(Call(), default);
        var gone = _audit!.Store.FilePath;
        File.Move(gone, gone + ".away");
        try
        {
            var receipt = _audit.Record(new AuditEvent { Kind = "test", Actor = "test" });
            await Assert.ThrowsAsync<StoreUnavailableException>(() => receipt.Durable);
            Assert.False((await decider.DecideAsync(Call(), default)).Forward);
        }
        finally
        {
            File.Move(gone + ".away", gone);
        }

        Assert.True((await decider.DecideAsync(Call(), default)).Forward);
    }
}
