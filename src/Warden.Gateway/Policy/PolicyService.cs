using Microsoft.Extensions.Logging;
using Warden.Core.Policy;
using Warden.Core.Storage;
using Warden.Gateway.Configuration;

namespace Warden.Gateway.Policy;

/// <summary>
/// Loads the policy at start, reloads it when its files change or on request, and keeps the last good
/// policy whenever a reload fails. With no valid policy at all, the pipeline refuses every call.
/// </summary>
public sealed partial class PolicyService : IDisposable
{
    private readonly WardenConfig _config;
    private readonly PolicyHolder _holder;
    private readonly IWardenStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _reloadGate = new(1, 1);
    private FileSystemWatcher? _watcher;
    private Timer? _debounce;

    /// <summary>Creates the service.</summary>
    public PolicyService(WardenConfig config, PolicyHolder holder, IWardenStore store, TimeProvider time, ILoggerFactory loggerFactory)
    {
        _config = config;
        _holder = holder;
        _store = store;
        _time = time;
        _logger = loggerFactory.CreateLogger("Warden.Policy");
        Path = config.Policy is { } p ? config.Resolve(p) : null;
    }

    /// <summary>The policy file or folder, or null when the config names none.</summary>
    public string? Path { get; }

    /// <summary>Extra reference checks (live tools), set once upstreams are up.</summary>
    public Func<PolicyReferences>? References { get; set; }

    /// <summary>Loads (or reloads) the policy. Returns the diagnostics; the holder keeps the last good policy on failure.</summary>
    public async Task<PolicyCompileResult> ReloadAsync(string reason, CancellationToken cancellationToken = default)
    {
        await _reloadGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            PolicyCompileResult result;
            if (Path is null)
            {
                result = new PolicyCompileResult(null, [new Core.Text.SourceDiagnostic("warden.yaml", 1, 1, "no policy configured", "set policy: PATH in warden.yaml; without a policy Warden refuses every call")]);
            }
            else
            {
                var references = References?.Invoke() ?? new PolicyReferences { Servers = [.. _config.Servers.Keys] };
                result = PolicyFiles.Compile(Path, references);
            }

            foreach (var warning in result.Diagnostics.Where(d => d.IsWarning))
            {
                LogWarning(_logger, warning.ToString());
            }

            if (result.Policy is { } policy)
            {
                var previous = _holder.Version;
                _holder.Swap(policy, _time.GetUtcNow());
                if (previous != policy.Version)
                {
                    LogLoaded(_logger, policy.Version, policy.Rules.Count, reason);
                    await PublishAsync("loaded", policy.Version).ConfigureAwait(false);
                }
            }
            else
            {
                var problems = result.Diagnostics.Where(d => !d.IsWarning).Select(d => d.ToString()).ToList();
                _holder.Reject(new PolicyRejection(_time.GetUtcNow(), problems));
                LogRejected(_logger, reason, _holder.Version, string.Join(Environment.NewLine, problems));
                await PublishAsync("rejected", _holder.Version).ConfigureAwait(false);
            }

            return result;
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    private async Task PublishAsync(string what, string version)
    {
        try
        {
            await _store.PublishChangeAsync(ChangeTopics.Policy, what, version).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LogWarning(_logger, "could not record policy change in the store: " + ex.Message);
        }
    }

    /// <summary>Starts watching the policy files; changes reload after a short quiet period.</summary>
    public void Watch()
    {
        if (Path is null)
        {
            return;
        }

        var isDir = Directory.Exists(Path);
        var dir = isDir ? Path : System.IO.Path.GetDirectoryName(Path);
        if (dir is null || !Directory.Exists(dir))
        {
            return;
        }

        _debounce = new Timer(_ => _ = ReloadAsync("file change"), null, Timeout.Infinite, Timeout.Infinite);
        // A single policy file is watched alone: its folder may be the data folder too, where every SQLite
        // write would otherwise schedule a reload.
        _watcher = new FileSystemWatcher(dir, isDir ? "*" : System.IO.Path.GetFileName(Path))
        {
            IncludeSubdirectories = isDir,
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
            EnableRaisingEvents = true,
        };

        // Editors save in several steps (truncate, write, rename); wait for quiet before reloading.
        void Changed(object? s, FileSystemEventArgs e) => _debounce?.Change(200, Timeout.Infinite);
        _watcher.Changed += Changed;
        _watcher.Created += Changed;
        _watcher.Deleted += Changed;
        _watcher.Renamed += (s, e) => Changed(s, e);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _watcher?.Dispose();
        _debounce?.Dispose();
        _reloadGate.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Policy {Version} in force ({Rules} rules; {Reason})")]
    private static partial void LogLoaded(ILogger logger, string version, int rules, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Policy reload ({Reason}) rejected; policy {Version} stays in force:\n{Problems}")]
    private static partial void LogRejected(ILogger logger, string reason, string version, string problems);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Message}")]
    private static partial void LogWarning(ILogger logger, string message);
}
