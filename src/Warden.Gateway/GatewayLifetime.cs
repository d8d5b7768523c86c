using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Warden.Core.Storage;
using Warden.Gateway.Configuration;
using Warden.Gateway.Mcp;
using Warden.Gateway.Policy;
using Warden.Gateway.Security;

namespace Warden.Gateway;

/// <summary>Starts and stops the gateway's parts in order, and follows the store's change feed.</summary>
internal sealed partial class GatewayLifetime(
    WardenConfig config,
    IWardenStore store,
    PolicyService policy,
    McpGateway gateway,
    PrincipalDirectory principals,
    Stops.StopService stops,
    Approvals.ApprovalService approvals,
    DataGuard.LabelSync labels,
    ILogger<GatewayLifetime> logger) : IHostedService
{
    private readonly CancellationTokenSource _stopping = new();
    private Task? _feed;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await store.InitializeAsync(cancellationToken).ConfigureAwait(false);

        // Stops survive restarts: load them before the listener takes a single call.
        await stops.RefreshAsync(cancellationToken).ConfigureAwait(false);
        stops.Issued += approvals.Void;

        // Upstreams start in the background: a slow or dead tool server must not delay the listener.
        gateway.Pool.Start();
        await policy.ReloadAsync("start", cancellationToken).ConfigureAwait(false);
        policy.Watch();

        // After the policy: abandoning callers lost in a restart and timing out approvals need no policy, but
        // the first held call may arrive as soon as the listener runs.
        await approvals.StartAsync(cancellationToken).ConfigureAwait(false);
        var after = await store.GetLatestChangeIdAsync(cancellationToken).ConfigureAwait(false);

        // Data labels survive restarts and reach every replica: load those in force after taking the feed's position
        // (a label added in between is in both, which is harmless) and before the listener takes a call.
        await labels.LoadAsync(cancellationToken).ConfigureAwait(false);
        _feed = Task.Run(() => FollowAsync(after, _stopping.Token), CancellationToken.None);
        if (config.Mcp.AnonymousAgent is { } anonymous)
        {
            LogAnonymous(logger, anonymous);
        }
    }

    private async Task FollowAsync(long after, CancellationToken stopping)
    {
        var resync = false;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                if (resync)
                {
                    // A label change may have been taken from the feed but not read when the store failed: read
                    // every record after the last one seen (the feed resumes after that change, not before it).
                    await labels.OnChangeAsync(stopping).ConfigureAwait(false);
                    resync = false;
                }

                await foreach (var change in store.WatchAsync(after, stopping).ConfigureAwait(false))
                {
                    after = change.Id;
                    if (change.Topic == ChangeTopics.Principal)
                    {
                        principals.Invalidate();
                    }
                    else if (change.Topic == ChangeTopics.Stop)
                    {
                        await stops.RefreshAsync(stopping).ConfigureAwait(false);
                    }
                    else if (change.Topic == ChangeTopics.Approval)
                    {
                        await approvals.OnStoreChangeAsync(change.Key, stopping).ConfigureAwait(false);
                    }
                    else if (change.Topic == ChangeTopics.Label)
                    {
                        await labels.OnChangeAsync(stopping).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The store is down: caches are cleared so nothing stale is trusted, and we retry.
                principals.Invalidate();
                resync = true;
                LogFeedFailed(logger, ex.Message);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(500), stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_feed is not null)
        {
            await _feed.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await approvals.DisposeAsync().ConfigureAwait(false);
        await labels.DisposeAsync().ConfigureAwait(false);
        await gateway.DisposeAsync().ConfigureAwait(false);
        await store.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Anonymous agent '{Agent}' is enabled: requests without a token on /mcp are made as this agent (loopback only; for conformance testing)")]
    private static partial void LogAnonymous(ILogger logger, string agent);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Change feed interrupted: {Error}; retrying")]
    private static partial void LogFeedFailed(ILogger logger, string error);
}
