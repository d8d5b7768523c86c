using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Core.Audit;
using Warden.Core.Policy;
using Warden.Core.Storage;

namespace Warden.Gateway.Audit;

/// <summary>
/// Records the gateway's start and the policy in force, then follows the store's change feed to record policy
/// loads and rejections, principal administration and any other published change (stops, approvals) in the chain.
/// Runs after <see cref="GatewayLifetime"/> has initialized the store and loaded the policy.
/// </summary>
internal sealed partial class AuditLifetime(AuditLog audit, IWardenStore store, PolicyHolder policy, ILogger<AuditLifetime> logger) : IHostedService
{
    private readonly CancellationTokenSource _stopping = new();
    private Task? _feed;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var started = audit.Record(new AuditEvent
        {
            Kind = AuditKinds.WardenStarted,
            Actor = "warden",
            Detail = AuditLog.Json(w =>
            {
                w.WriteString("version", GatewayInfo.Version);
                w.WriteString("pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }),
        });
        RecordPolicy("loaded", "in force at start");
        try
        {
            var head = await started.Durable.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
            LogReady(logger, audit.Store.FilePath, head.Seq);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogUnavailable(logger, audit.Store.FilePath, ex.Message);
        }

        var after = await store.GetLatestChangeIdAsync(cancellationToken).ConfigureAwait(false);
        _feed = Task.Run(() => FollowAsync(after, _stopping.Token), CancellationToken.None);
    }

    private void RecordPolicy(string what, string reason)
    {
        if (what == "rejected")
        {
            var problems = policy.LastRejection?.Problems ?? [];
            audit.Record(new AuditEvent
            {
                Kind = AuditKinds.PolicyRejected,
                Actor = "warden",
                PolicyVersion = policy.Version,
                Detail = AuditLog.Json(w =>
                {
                    w.WriteString("reason", reason);
                    w.WriteStartArray("problems");
                    foreach (var p in problems)
                    {
                        w.WriteStringValue(p);
                    }

                    w.WriteEndArray();
                }),
            });
            return;
        }

        if (policy.Current is not null)
        {
            audit.Record(new AuditEvent
            {
                Kind = AuditKinds.PolicyLoaded,
                Actor = "warden",
                PolicyVersion = policy.Version,
                Detail = AuditLog.Json(w =>
                {
                    w.WriteString("reason", reason);
                    w.WriteNumber("rules", policy.Current.Rules.Count);
                }),
            });
        }
    }

    private async Task FollowAsync(long after, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await foreach (var change in store.WatchAsync(after, stopping).ConfigureAwait(false))
                {
                    after = change.Id;
                    Record(change);
                }
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                LogFeed(logger, ex.Message);
                await Task.Delay(500, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            catch (Exception)
            {
                return;
            }
        }
    }

    private void Record(StoreChange change)
    {
        switch (change.Topic)
        {
            case ChangeTopics.Policy when change.Key == "rejected":
                RecordPolicy("rejected", "reload rejected; the previous version stays in force");
                break;
            case ChangeTopics.Policy:
                audit.Record(new AuditEvent
                {
                    Kind = AuditKinds.PolicyLoaded,
                    Actor = "warden",
                    PolicyVersion = change.Payload,
                    Detail = AuditLog.Json(w => w.WriteString("reason", "reload")),
                });
                break;
            case ChangeTopics.Principal:
                audit.Record(new AuditEvent
                {
                    Kind = change.Payload == "revoked" ? AuditKinds.PrincipalRevoked : AuditKinds.PrincipalAdded,
                    Actor = "operator",
                    Detail = AuditLog.Json(w =>
                    {
                        w.WriteString("name", change.Key);
                        w.WriteString("change", change.Payload);
                    }),
                });
                break;
            case ChangeTopics.Stop when StopEvent(change) is { } stop:
                audit.Record(stop);
                break;
            default:
                audit.Record(new AuditEvent
                {
                    Kind = change.Topic + ".changed",
                    Actor = "warden",
                    Agent = change.Topic == ChangeTopics.Stop ? change.Key : null,
                    Detail = AuditLog.Json(w =>
                    {
                        w.WriteString("topic", change.Topic);
                        w.WriteString("key", change.Key);
                        if (change.Payload is { } p)
                        {
                            w.WriteString("payload", p);
                        }
                    }),
                });
                break;
        }
    }

    /// <summary>
    /// A stop, pause or resume: the feed's payload is <c>{event: stopped|paused|resumed, scope, target, by, reason}</c>
    /// (see <see cref="IWardenStore"/>); it becomes <c>agent.stopped</c>, <c>agent.paused</c> or <c>agent.resumed</c>.
    /// </summary>
    private static AuditEvent? StopEvent(StoreChange change)
    {
        if (change.Payload is not { Length: > 0 } payload)
        {
            return null;
        }

        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(payload);
            var root = doc.RootElement;
            string? Str(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString() : null;
            if (Str("event") is not { Length: > 0 } what)
            {
                return null;
            }

            var scope = Str("scope");
            return new AuditEvent
            {
                Kind = AuditKinds.AgentPrefix + what,
                // Operators stop and resume by name; breakers pause as "breaker:RULE".
                Actor = Str("by") is { Length: > 0 } by ? (by.Contains(':', StringComparison.Ordinal) ? by : "operator:" + by) : "warden",
                Agent = scope is null or "agent" ? Str("target") : null,
                Detail = AuditLog.Json(w =>
                {
                    w.WriteString("stop", change.Key);
                    w.WriteString("scope", scope);
                    w.WriteString("target", Str("target"));
                    w.WriteString("reason", Str("reason"));
                }),
            };
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_feed is not null)
        {
            await _feed.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Audit log {Path} ready at record {Seq}")]
    private static partial void LogReady(ILogger logger, string path, long seq);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Audit log {Path} cannot be written ({Reason}): calls are refused until it can")]
    private static partial void LogUnavailable(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Audit: change feed failed ({Reason}); retrying")]
    private static partial void LogFeed(ILogger logger, string reason);
}
