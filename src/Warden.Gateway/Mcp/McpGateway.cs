using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Warden.Core;
using Warden.Core.Pipeline;
using Warden.Gateway.Configuration;
using Warden.Gateway.Security;
using Warden.Gateway.Upstreams;

namespace Warden.Gateway.Mcp;

/// <summary>
/// The agent-facing MCP server: aggregates upstream tools, resources and prompts under namespaced names,
/// passes every tools/call, resources/read, prompts/get and upstream sampling or elicitation request through
/// the decision pipeline, and relays everything else faithfully.
/// </summary>
internal sealed partial class McpGateway : IUpstreamHooks, IAsyncDisposable
{
    private readonly WardenConfig _config;
    private readonly ICallDecider _decider;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    // Keyed by the transport's session id: the SDK hands each request a request-bound server object, so the
    // object differs between requests of one session while the id does not.
    private readonly ConcurrentDictionary<string, AgentSession> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _resourceOwners = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _sharedSubscriptions = new(StringComparer.Ordinal);
    private readonly string _sep;
    private readonly IHttpContextAccessor? _httpContext;

    private readonly DataGuard.ResultGuard? _resultGuard;

    public McpGateway(WardenConfig config, ICallDecider decider, ILoggerFactory loggerFactory, TimeProvider time, IHttpContextAccessor? httpContext = null, DataGuard.ResultGuard? resultGuard = null)
    {
        _resultGuard = resultGuard;
        _config = config;
        _httpContext = httpContext;
        _decider = decider;
        _time = time;
        _logger = loggerFactory.CreateLogger("Warden.Gateway");
        _sep = config.ToolSeparator;
        Pool = new UpstreamPool(config, this, new ProgressRelay(), loggerFactory, time);
    }

    public UpstreamPool Pool { get; }

    public IReadOnlyCollection<AgentSession> Sessions => [.. _sessions.Values];

    /// <summary>Fills the SDK's options with Warden's handlers.</summary>
    public void Configure(McpServerOptions options)
    {
        var caps = Capabilities();
        options.ServerInfo = new Implementation { Name = "warden", Title = "Warden MCP gateway", Version = GatewayInfo.Version };
        options.ServerInstructions = Instructions();
        var h = options.Handlers;
        h.ListToolsHandler = ListToolsAsync;
        h.CallToolHandler = CallToolAsync;

        // The SDK advertises a capability for every handler set, so only what some upstream offers gets one.
        if (caps.Resources is not null)
        {
            h.ListResourcesHandler = ListResourcesAsync;
            h.ListResourceTemplatesHandler = ListResourceTemplatesAsync;
            h.ReadResourceHandler = ReadResourceAsync;
            if (caps.Resources.Subscribe == true)
            {
                h.SubscribeToResourcesHandler = SubscribeAsync;
                h.UnsubscribeFromResourcesHandler = UnsubscribeAsync;
            }
        }

        if (caps.Prompts is not null)
        {
            h.ListPromptsHandler = ListPromptsAsync;
            h.GetPromptHandler = GetPromptAsync;
        }

        if (caps.Completions is not null)
        {
            h.CompleteHandler = CompleteAsync;
        }

        if (caps.Logging is not null)
        {
            h.SetLoggingLevelHandler = SetLoggingLevelAsync;
        }

        options.Capabilities = caps;
    }

    /// <summary>
    /// The union of what the upstreams support, so an agent sees the capabilities it would see connected to
    /// them directly. Computed per session, so an upstream that came up later is reflected in new sessions.
    /// </summary>
    public ServerCapabilities Capabilities()
    {
        var caps = new ServerCapabilities { Tools = new ToolsCapability { ListChanged = true } };
        foreach (var c in Pool.Catalog.Values)
        {
            if (c.Capabilities is not { } up)
            {
                continue;
            }

            if (up.Resources is { } r)
            {
                caps.Resources ??= new ResourcesCapability();
                caps.Resources.Subscribe = caps.Resources.Subscribe == true || r.Subscribe == true ? true : caps.Resources.Subscribe;
                caps.Resources.ListChanged = caps.Resources.ListChanged == true || r.ListChanged == true ? true : caps.Resources.ListChanged;
            }

            if (up.Prompts is { } p)
            {
                caps.Prompts ??= new PromptsCapability();
                caps.Prompts.ListChanged = caps.Prompts.ListChanged == true || p.ListChanged == true ? true : caps.Prompts.ListChanged;
            }

            if (up.Logging is not null)
            {
                caps.Logging ??= new LoggingCapability();
            }

            if (up.Completions is not null)
            {
                caps.Completions ??= new CompletionsCapability();
            }
        }

        return caps;
    }

    private string? Instructions()
    {
        var parts = Pool.Catalog.Values
            .Where(c => !string.IsNullOrWhiteSpace(c.Instructions))
            .Select(c => $"[{c.Server}] tools are named {c.Server}{_sep}<tool>. {c.Instructions}")
            .ToList();
        return parts.Count == 0 ? null : string.Join("\n\n", parts);
    }

    // ---- Sessions ----------------------------------------------------------------------------------

    /// <summary>Runs one downstream session, registering it for routing and releasing its upstreams at the end.</summary>
    public async Task RunSessionAsync(ClaimsPrincipal user, McpServer server, CancellationToken cancellationToken)
    {
        var session = GetOrCreateSession(server, user);
        if (!session.IsStateful)
        {
            await server.RunAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        try
        {
            await server.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await EndSessionAsync(session).ConfigureAwait(false);
        }
    }

    private AgentSession GetOrCreateSession(McpServer server, ClaimsPrincipal? user)
    {
        // Stateless requests have no lasting session: each gets a short-lived one that is never registered.
        if (server.SessionId is not { } id)
        {
            return new AgentSession(server, Identity(user), null, _time.GetUtcNow());
        }

        return _sessions.GetOrAdd(id, static (key, state) => new AgentSession(state.server, state.self.Identity(state.user), key, state.self._time.GetUtcNow()), (server, user, self: this));
    }

    private AgentSession Session<T>(RequestContext<T> context) => GetOrCreateSession(context.Server, context.User);

    private AgentIdentity Identity(ClaimsPrincipal? user)
    {
        var name = user?.FindFirst(WardenClaims.Name)?.Value
            ?? throw new McpProtocolException("request is not authenticated", McpErrorCode.InvalidRequest);
        var groups = user.FindAll(WardenClaims.Group).Select(c => c.Value).ToArray();
        return new AgentIdentity(name, groups);
    }

    private async ValueTask EndSessionAsync(AgentSession session)
    {
        if (session.TransportSessionId is { } id)
        {
            _sessions.TryRemove(id, out _);
        }
        foreach (var (uri, server) in session.Subscriptions)
        {
            await ReleaseSharedSubscriptionAsync(server, uri).ConfigureAwait(false);
        }

        await Pool.ReleaseAsync(session).ConfigureAwait(false);
    }

    // ---- Tools -------------------------------------------------------------------------------------

    private async ValueTask<ListToolsResult> ListToolsAsync(RequestContext<ListToolsRequestParams> context, CancellationToken cancellationToken)
    {
        var session = Session(context);
        var result = new ListToolsResult { Tools = [] };
        var seen = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var server in Pool.Servers)
        {
            IReadOnlyList<Tool> tools;
            try
            {
                var connection = await Pool.GetAsync(server, session, cancellationToken).ConfigureAwait(false);
                tools = await connection.GetToolsAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A down upstream must not hide the others' tools; its tools reappear when it is back.
                LogListFailed(_logger, server, ex.Message);
                continue;
            }

            foreach (var tool in tools)
            {
                var exposed = Exposed(server, tool.Name);
                if (seen.TryGetValue(exposed, out var other))
                {
                    // Never let one tool silently replace another: both names are logged and the later one is hidden.
                    LogCollision(_logger, exposed, other, server + ":" + tool.Name);
                    continue;
                }

                seen[exposed] = server + ":" + tool.Name;
                result.Tools.Add(Rename(tool, exposed));
            }
        }

        return result;
    }

    private static Tool Rename(Tool tool, string name) => new()
    {
        Name = name,
        Title = tool.Title,
        Description = tool.Description,
        InputSchema = tool.InputSchema,
        OutputSchema = tool.OutputSchema,
        Annotations = tool.Annotations,
        Icons = tool.Icons,
        Meta = tool.Meta,
    };

    private string Exposed(string server, string name) => Pool.Catalog[server].Config.Prefix ? server + _sep + name : name;

    /// <summary>
    /// Which upstream a name the agent used belongs to: <c>server__name</c> for prefixed servers, else the
    /// unprefixed server that lists it (the first in config order; a collision was logged when listing).
    /// </summary>
    private async ValueTask<(string Server, string Name)?> ResolveAsync(string exposed, AgentSession session, bool prompt, CancellationToken cancellationToken)
    {
        var i = exposed.IndexOf(_sep, StringComparison.Ordinal);
        if (i > 0 && Pool.Catalog.TryGetValue(exposed[..i], out var prefixed) && prefixed.Config.Prefix)
        {
            return (exposed[..i], exposed[(i + _sep.Length)..]);
        }

        var unprefixed = Pool.Servers.Where(s => !Pool.Catalog[s].Config.Prefix).ToList();
        if (unprefixed.Count == 1)
        {
            return (unprefixed[0], exposed);
        }

        foreach (var server in unprefixed)
        {
            try
            {
                var connection = await Pool.GetAsync(server, session, cancellationToken).ConfigureAwait(false);
                if (prompt)
                {
                    return (server, exposed);
                }

                if (FindTool(await connection.GetToolsAsync(cancellationToken).ConfigureAwait(false), exposed) is not null)
                {
                    return (server, exposed);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // An unavailable server cannot own the name; the others are still checked.
            }
        }

        return null;
    }

    private async ValueTask<CallToolResult> CallToolAsync(RequestContext<CallToolRequestParams> context, CancellationToken cancellationToken)
    {
        var request = context.Params ?? throw new McpProtocolException("missing params", McpErrorCode.InvalidParams);
        var session = Session(context);
        if (await ResolveAsync(request.Name, session, prompt: false, cancellationToken).ConfigureAwait(false) is not var (server, toolName))
        {
            throw new McpProtocolException($"unknown tool '{request.Name}': tools are named server{_sep}tool; call tools/list to see them", McpErrorCode.InvalidParams);
        }

        var connection = await ConnectionFor(server, session, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<Tool> tools;
        try
        {
            tools = await connection.GetToolsAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (UpstreamUnavailableException ex)
        {
            throw new McpProtocolException(ex.Message, McpErrorCode.InternalError);
        }

        var tool = FindTool(tools, toolName)
            ?? throw new McpProtocolException($"unknown tool '{request.Name}': server '{server}' has no tool '{toolName}'", McpErrorCode.InvalidParams);

        var call = new CallContext
        {
            Agent = session.Agent,
            SessionId = session.Id,
            Operation = McpOperation.ToolCall,
            Server = server,
            Target = toolName,
            Arguments = request.Arguments as IReadOnlyDictionary<string, JsonElement> ?? request.Arguments?.ToDictionary(),
            AnnotatedClasses = ToolClassifier.FromAnnotations(tool.Annotations?.ReadOnlyHint, tool.Annotations?.DestructiveHint, tool.Annotations?.OpenWorldHint),
            ReceivedAt = _time.GetUtcNow(),
        };

        // In a stateful session the handler's token follows the session, not the POST that carries the call.
        // Clients cancel by dropping that POST (the C# SDK sends no notifications/cancelled over Streamable
        // HTTP), and without an event store the answer could never reach them anyway: treat it as a cancel.
        // A call held for approval is withdrawn the same way.
        using var agentGone = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, RequestAborted());
        cancellationToken = agentGone.Token;

        var permit = await _decider.DecideAsync(call, cancellationToken, new WaitingCaller(context)).ConfigureAwait(false);
        if (!permit.Forward)
        {
            return new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = permit.Message }] };
        }

        if (permit.Cancellation.IsCancellationRequested)
        {
            // A stop landed between the decision and now: the call never leaves.
            await permit.CompleteAsync(null, new OperationCanceledException()).ConfigureAwait(false);
            return new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = permit.CancellationMessage ?? "cancelled by Warden" }] };
        }

        // The data guard may have redacted arguments: those are what leave, never the originals.
        var arguments = call.ForwardArguments is { } redacted ? new Dictionary<string, JsonElement>(redacted) : request.Arguments;
        var forwarded = new CallToolRequestParams { Name = toolName, Arguments = arguments, Meta = CopyMeta(request.Meta, permit.Meta) };
        ProgressRelay.Route? route = null;
        if (request.ProgressToken is { } agentToken)
        {
            route = Pool.Progress.Register(context.Server, agentToken);
            forwarded.Meta!["progressToken"] = route.UpstreamToken;
        }

        Interlocked.Increment(ref session.InFlight);
        using var active = session.Track(context.Server);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, permit.Cancellation);
        timeout.CancelAfter(connection.Config.CallTimeout);
        try
        {
            var result = await GuardResultAsync(call, await connection.GetClient().CallToolAsync(forwarded, timeout.Token).ConfigureAwait(false)).ConfigureAwait(false);
            if (route is not null)
            {
                // Every progress update the upstream sent before its answer reaches the agent before the answer.
                await route.DisposeAsync().ConfigureAwait(false);
                route = null;
            }

            await permit.CompleteAsync(result, null).ConfigureAwait(false);
            return result;
        }
        catch (Exception ex)
        {
            var mapped = MapUpstreamFailure(ex, server, timeout, cancellationToken, permit.Cancellation);
            await permit.CompleteAsync(null, mapped).ConfigureAwait(false);
            if (mapped is OperationCanceledException)
            {
                throw mapped;
            }

            if (permit.Cancellation.IsCancellationRequested)
            {
                return new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = permit.CancellationMessage ?? "cancelled by Warden" }] };
            }

            throw mapped;
        }
        finally
        {
            Interlocked.Decrement(ref session.InFlight);
            if (route is not null)
            {
                await route.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The data guard on a result, before the agent sees it (redaction, durable labels; a withheld result throws).</summary>
    private ValueTask<T> GuardResultAsync<T>(CallContext call, T result) => _resultGuard is null ? ValueTask.FromResult(result) : _resultGuard.GuardAsync(call, result);

    /// <summary>Fires when the HTTP request that carried the current message is aborted by the client.</summary>
    private CancellationToken RequestAborted()
    {
        try
        {
            return _httpContext?.HttpContext?.RequestAborted ?? CancellationToken.None;
        }
        catch (ObjectDisposedException)
        {
            return CancellationToken.None;
        }
    }

    private static Tool? FindTool(IReadOnlyList<Tool> tools, string name)
    {
        foreach (var t in tools)
        {
            if (t.Name == name)
            {
                return t;
            }
        }

        return null;
    }

    private static JsonObject CopyMeta(JsonObject? meta, IReadOnlyDictionary<string, JsonNode?>? extra)
    {
        var copy = meta is null ? new JsonObject() : (JsonObject)meta.DeepClone();
        if (extra is not null)
        {
            foreach (var (k, v) in extra)
            {
                copy[k] = v?.DeepClone();
            }
        }

        return copy;
    }

    private async ValueTask<UpstreamConnection> ConnectionFor(string server, AgentSession session, CancellationToken cancellationToken)
    {
        try
        {
            return await Pool.GetAsync(server, session, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new McpProtocolException($"upstream server '{server}' is unavailable: it did not finish connecting in time", McpErrorCode.InternalError);
        }
        catch (UpstreamUnavailableException ex)
        {
            throw new McpProtocolException(ex.Message, McpErrorCode.InternalError);
        }
    }

    private static Exception MapUpstreamFailure(Exception ex, string server, CancellationTokenSource timeout, CancellationToken agentToken, CancellationToken wardenToken)
    {
        switch (ex)
        {
            case OperationCanceledException when agentToken.IsCancellationRequested:
                return ex;
            case OperationCanceledException when wardenToken.IsCancellationRequested:
                return new McpProtocolException("cancelled by Warden", McpErrorCode.InternalError);
            case OperationCanceledException when timeout.IsCancellationRequested:
                return new McpProtocolException($"upstream server '{server}' did not answer in time", McpErrorCode.InternalError);
            case UpstreamUnavailableException u:
                return new McpProtocolException(u.Message, McpErrorCode.InternalError);
            case McpProtocolException p:
                // The upstream's own protocol error (unknown resource, bad params): pass code and message on.
                return new McpProtocolException(StripRemotePrefix(p.Message), p.ErrorCode);
            default:
                return new McpProtocolException($"upstream server '{server}' failed during the call: {ex.Message}", McpErrorCode.InternalError);
        }
    }

    private static string StripRemotePrefix(string message)
    {
        const string prefix = "Request failed (remote): ";
        return message.StartsWith(prefix, StringComparison.Ordinal) ? message[prefix.Length..] : message;
    }

    // ---- Resources ---------------------------------------------------------------------------------

    private async ValueTask<ListResourcesResult> ListResourcesAsync(RequestContext<ListResourcesRequestParams> context, CancellationToken cancellationToken)
    {
        var result = new ListResourcesResult { Resources = [] };
        await ForEachPageAsync(Session(context), c => c.Resources is not null, async (client, server, cursor, ct) =>
        {
            var page = await client.ListResourcesAsync(new ListResourcesRequestParams { Cursor = cursor }, ct).ConfigureAwait(false);
            foreach (var r in page.Resources)
            {
                _resourceOwners[r.Uri] = server;
                result.Resources.Add(r);
            }

            return page.NextCursor;
        }, cancellationToken).ConfigureAwait(false);
        return result;
    }

    private async ValueTask<ListResourceTemplatesResult> ListResourceTemplatesAsync(RequestContext<ListResourceTemplatesRequestParams> context, CancellationToken cancellationToken)
    {
        var result = new ListResourceTemplatesResult { ResourceTemplates = [] };
        await ForEachPageAsync(Session(context), c => c.Resources is not null, async (client, server, cursor, ct) =>
        {
            var page = await client.ListResourceTemplatesAsync(new ListResourceTemplatesRequestParams { Cursor = cursor }, ct).ConfigureAwait(false);
            foreach (var t in page.ResourceTemplates)
            {
                _resourceOwners["template:" + TemplatePrefix(t.UriTemplate)] = server;
                result.ResourceTemplates.Add(t);
            }

            return page.NextCursor;
        }, cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// Pages through a list on every upstream that offers it, in config order. A failing upstream is logged and
    /// skipped, so one that is down never hides the others' items; a runaway cursor stops after 1000 pages.
    /// </summary>
    private async ValueTask ForEachPageAsync(
        AgentSession session,
        Func<ServerCapabilities, bool> offers,
        Func<McpClient, string, string?, CancellationToken, ValueTask<string?>> page,
        CancellationToken cancellationToken)
    {
        foreach (var server in Pool.Servers)
        {
            if (Pool.Catalog[server].Capabilities is not { } caps || !offers(caps))
            {
                continue;
            }

            try
            {
                var client = (await Pool.GetAsync(server, session, cancellationToken).ConfigureAwait(false)).GetClient();
                string? cursor = null;
                var pages = 0;
                do
                {
                    cursor = await page(client, server, cursor, cancellationToken).ConfigureAwait(false);
                }
                while (cursor is not null && ++pages < 1000);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogListFailed(_logger, server, ex.Message);
            }
        }
    }

    private static string TemplatePrefix(string template)
    {
        var i = template.IndexOf('{', StringComparison.Ordinal);
        return i < 0 ? template : template[..i];
    }

    /// <summary>
    /// Which upstream serves a URI: one seen in its resource list, else the one whose template prefix is the
    /// longest match, else the only upstream with resources. Ambiguity is an error, never a guess.
    /// </summary>
    private string ResourceServer(string uri)
    {
        if (_resourceOwners.TryGetValue(uri, out var owner))
        {
            return owner;
        }

        string? best = null;
        var bestLength = -1;
        foreach (var (key, server) in _resourceOwners)
        {
            if (key.StartsWith("template:", StringComparison.Ordinal))
            {
                var prefix = key["template:".Length..];
                if (uri.StartsWith(prefix, StringComparison.Ordinal) && prefix.Length > bestLength)
                {
                    best = server;
                    bestLength = prefix.Length;
                }
            }
        }

        if (best is not null)
        {
            return best;
        }

        var withResources = Pool.Servers.Where(s => Pool.Catalog[s].Capabilities?.Resources is not null).ToList();
        return withResources.Count switch
        {
            1 => withResources[0],
            0 => throw new McpProtocolException($"unknown resource '{uri}': no upstream serves resources", McpErrorCode.InvalidParams),
            _ => throw new McpProtocolException($"unknown resource '{uri}': list resources first so Warden knows which upstream serves it", McpErrorCode.InvalidParams),
        };
    }

    private async ValueTask<ReadResourceResult> ReadResourceAsync(RequestContext<ReadResourceRequestParams> context, CancellationToken cancellationToken)
    {
        var request = context.Params ?? throw new McpProtocolException("missing params", McpErrorCode.InvalidParams);
        var session = Session(context);
        var server = ResourceServer(request.Uri);
        var connection = await ConnectionFor(server, session, cancellationToken).ConfigureAwait(false);
        var call = new CallContext
        {
            Agent = session.Agent,
            SessionId = session.Id,
            Operation = McpOperation.ResourceRead,
            Server = server,
            Target = request.Uri,
            AnnotatedClasses = ToolClasses.ReadOnly,
            ReceivedAt = _time.GetUtcNow(),
        };
        return await DecideAndForwardAsync(call, connection, (client, ct) => client.ReadResourceAsync(request, ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Decides a call that is not a tool call (a resource read, a prompt) and forwards it when allowed. A refusal
    /// is a JSON-RPC error, since these methods have no isError result; a stop cancels the call in flight.
    /// </summary>
    private async ValueTask<TResult> DecideAndForwardAsync<TResult>(CallContext call, UpstreamConnection connection, Func<McpClient, CancellationToken, ValueTask<TResult>> forward, CancellationToken cancellationToken)
    {
        var permit = await _decider.DecideAsync(call, cancellationToken).ConfigureAwait(false);
        if (!permit.Forward)
        {
            throw new McpProtocolException(permit.Message, McpErrorCode.InvalidRequest);
        }

        try
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, permit.Cancellation);
            var result = await GuardResultAsync(call, await forward(connection.GetClient(), linked.Token).ConfigureAwait(false)).ConfigureAwait(false);
            await permit.CompleteAsync(null, null).ConfigureAwait(false);
            return result;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            using var none = new CancellationTokenSource();
            var mapped = MapUpstreamFailure(ex, call.Server, none, cancellationToken, permit.Cancellation);
            await permit.CompleteAsync(null, mapped).ConfigureAwait(false);
            throw mapped;
        }
        catch (OperationCanceledException ex)
        {
            // The agent cancelled: the permit still hands back what it holds (a limit's slot, the stop tracker's entry).
            await permit.CompleteAsync(null, ex).ConfigureAwait(false);
            throw;
        }
    }

    private async ValueTask<EmptyResult> SubscribeAsync(RequestContext<SubscribeRequestParams> context, CancellationToken cancellationToken)
    {
        var request = context.Params ?? throw new McpProtocolException("missing params", McpErrorCode.InvalidParams);
        var session = Session(context);
        var server = ResourceServer(request.Uri);
        var connection = await ConnectionFor(server, session, cancellationToken).ConfigureAwait(false);
        if (!session.Subscriptions.TryAdd(request.Uri, server))
        {
            return new EmptyResult();
        }

        // A shared connection subscribes once for all sessions; updates fan out to the sessions that asked.
        var first = connection.Scope.Length > 0 || _sharedSubscriptions.AddOrUpdate(server + "\n" + request.Uri, 1, (_, n) => n + 1) == 1;
        if (first)
        {
            try
            {
                await connection.GetClient().SubscribeToResourceAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                session.Subscriptions.TryRemove(request.Uri, out _);
                if (connection.Scope.Length == 0)
                {
                    await ReleaseSharedSubscriptionAsync(server, request.Uri, unsubscribe: false).ConfigureAwait(false);
                }

                using var none = new CancellationTokenSource();
                throw MapUpstreamFailure(ex, server, none, cancellationToken, CancellationToken.None);
            }
        }

        return new EmptyResult();
    }

    private async ValueTask<EmptyResult> UnsubscribeAsync(RequestContext<UnsubscribeRequestParams> context, CancellationToken cancellationToken)
    {
        var request = context.Params ?? throw new McpProtocolException("missing params", McpErrorCode.InvalidParams);
        var session = Session(context);
        if (!session.Subscriptions.TryRemove(request.Uri, out var server))
        {
            return new EmptyResult();
        }

        var connection = await ConnectionFor(server, session, cancellationToken).ConfigureAwait(false);
        if (connection.Scope.Length > 0)
        {
            await connection.GetClient().UnsubscribeFromResourceAsync(request, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await ReleaseSharedSubscriptionAsync(server, request.Uri).ConfigureAwait(false);
        }

        return new EmptyResult();
    }

    private async ValueTask ReleaseSharedSubscriptionAsync(string server, string uri, bool unsubscribe = true)
    {
        var key = server + "\n" + uri;
        var remaining = _sharedSubscriptions.AddOrUpdate(key, 0, (_, n) => n - 1);
        if (remaining > 0)
        {
            return;
        }

        _sharedSubscriptions.TryRemove(key, out _);
        if (unsubscribe && Pool.Catalog.TryGetValue(server, out var shared) && shared.Config.Connection == ConnectionSharing.Shared)
        {
            try
            {
                await shared.GetClient().UnsubscribeFromResourceAsync(new UnsubscribeRequestParams { Uri = uri }, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                LogListFailed(_logger, server, "unsubscribe: " + ex.Message);
            }
        }
    }

    // ---- Prompts and completion --------------------------------------------------------------------

    private async ValueTask<ListPromptsResult> ListPromptsAsync(RequestContext<ListPromptsRequestParams> context, CancellationToken cancellationToken)
    {
        var result = new ListPromptsResult { Prompts = [] };
        await ForEachPageAsync(Session(context), c => c.Prompts is not null, async (client, server, cursor, ct) =>
        {
            var page = await client.ListPromptsAsync(new ListPromptsRequestParams { Cursor = cursor }, ct).ConfigureAwait(false);
            foreach (var p in page.Prompts)
            {
                result.Prompts.Add(new Prompt { Name = Exposed(server, p.Name), Title = p.Title, Description = p.Description, Arguments = p.Arguments, Icons = p.Icons, Meta = p.Meta });
            }

            return page.NextCursor;
        }, cancellationToken).ConfigureAwait(false);
        return result;
    }

    private async ValueTask<GetPromptResult> GetPromptAsync(RequestContext<GetPromptRequestParams> context, CancellationToken cancellationToken)
    {
        var request = context.Params ?? throw new McpProtocolException("missing params", McpErrorCode.InvalidParams);
        var session = Session(context);
        if (await ResolveAsync(request.Name, session, prompt: true, cancellationToken).ConfigureAwait(false) is not var (server, name))
        {
            throw new McpProtocolException($"unknown prompt '{request.Name}': prompts are named server{_sep}prompt", McpErrorCode.InvalidParams);
        }

        var connection = await ConnectionFor(server, session, cancellationToken).ConfigureAwait(false);
        var call = new CallContext
        {
            Agent = session.Agent,
            SessionId = session.Id,
            Operation = McpOperation.PromptGet,
            Server = server,
            Target = name,
            Arguments = request.Arguments?.ToDictionary(kv => kv.Key, kv => kv.Value),
            AnnotatedClasses = ToolClasses.ReadOnly,
            ReceivedAt = _time.GetUtcNow(),
        };
        return await DecideAndForwardAsync(
            call,
            connection,
            (client, ct) => client.GetPromptAsync(new GetPromptRequestParams { Name = name, Arguments = request.Arguments, Meta = request.Meta }, ct),
            cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<CompleteResult> CompleteAsync(RequestContext<CompleteRequestParams> context, CancellationToken cancellationToken)
    {
        var request = context.Params ?? throw new McpProtocolException("missing params", McpErrorCode.InvalidParams);
        var session = Session(context);
        string server;
        Reference reference;
        switch (request.Ref)
        {
            case PromptReference p:
                if (await ResolveAsync(p.Name, session, prompt: true, cancellationToken).ConfigureAwait(false) is not var (s, name))
                {
                    throw new McpProtocolException($"unknown prompt '{p.Name}'", McpErrorCode.InvalidParams);
                }

                server = s;
                reference = new PromptReference { Name = name, Title = p.Title };
                break;
            case ResourceTemplateReference r when r.Uri is { } uri:
                server = ResourceServer(uri);
                reference = r;
                break;
            default:
                throw new McpProtocolException("unknown completion reference", McpErrorCode.InvalidParams);
        }

        var connection = await ConnectionFor(server, session, cancellationToken).ConfigureAwait(false);
        if (connection.Capabilities?.Completions is null)
        {
            return new CompleteResult { Completion = new Completion { Values = [] } };
        }

        try
        {
            return await connection.GetClient().CompleteAsync(new CompleteRequestParams { Ref = reference, Argument = request.Argument, Context = request.Context, Meta = request.Meta }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            using var none = new CancellationTokenSource();
            throw MapUpstreamFailure(ex, server, none, cancellationToken, CancellationToken.None);
        }
    }

    // ---- Logging -----------------------------------------------------------------------------------

    private async ValueTask<EmptyResult> SetLoggingLevelAsync(RequestContext<SetLevelRequestParams> context, CancellationToken cancellationToken)
    {
        var request = context.Params ?? throw new McpProtocolException("missing params", McpErrorCode.InvalidParams);
        var session = Session(context);
        session.LoggingLevel = request.Level;
        foreach (var server in Pool.Servers)
        {
            if (Pool.Catalog[server].Capabilities?.Logging is null)
            {
                continue;
            }

            try
            {
                var connection = await Pool.GetAsync(server, session, cancellationToken).ConfigureAwait(false);

                // A shared upstream sends everything at the most verbose level any session asked for;
                // Warden filters per session, so one agent's setLevel never changes what another sees.
                var level = connection.Scope.Length == 0 ? MostVerboseLevel() : request.Level;
                LogNotification(_logger, "logging/setLevel " + level, server, connection.Scope);
                await connection.GetClient().SetLoggingLevelAsync(new SetLevelRequestParams { Level = level }, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogListFailed(_logger, server, "logging/setLevel: " + ex.Message);
            }
        }

        return new EmptyResult();
    }

    private LoggingLevel MostVerboseLevel()
    {
        var level = LoggingLevel.Emergency;
        foreach (var s in _sessions.Values)
        {
            if (s.LoggingLevel is { } l && l < level)
            {
                level = l;
            }
        }

        return level;
    }

    // ---- From upstreams ----------------------------------------------------------------------------

    private IEnumerable<AgentSession> Audience(UpstreamConnection connection)
    {
        if (connection.Scope.Length == 0)
        {
            return _sessions.Values;
        }

        return _sessions.Values.Where(s => s.OwnConnections.Values.Contains(connection));
    }

    public async ValueTask OnNotificationAsync(UpstreamConnection connection, JsonRpcNotification notification, CancellationToken cancellationToken)
    {
        LogNotification(_logger, notification.Method, connection.Server, connection.Scope);
        IEnumerable<AgentSession> targets = Audience(connection);
        switch (notification.Method)
        {
            case NotificationMethods.LoggingMessageNotification:
                var level = ParseLevel(notification.Params);
                targets = targets.Where(s => s.LoggingLevel is null || level is null || level >= s.LoggingLevel);
                break;
            case NotificationMethods.ResourceUpdatedNotification:
                var uri = notification.Params?["uri"]?.GetValue<string>();
                targets = targets.Where(s => uri is not null && s.Subscriptions.ContainsKey(uri));
                break;
        }

        foreach (var session in targets.Where(s => s.IsStateful).ToList())
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                var target = connection.Scope.Length > 0 && notification.Method == NotificationMethods.LoggingMessageNotification ? session.NotificationTarget : session.Server;
                await target.SendNotificationAsync(notification.Method, notification.Params, McpJsonUtilities.DefaultOptions, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                LogRelayFailed(_logger, notification.Method, session.Id, ex.Message);
            }
        }
    }

    private static LoggingLevel? ParseLevel(JsonNode? p)
    {
        try
        {
            return p?["level"] is { } node ? node.Deserialize<LoggingLevel>(McpJsonUtilities.DefaultOptions) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The agent session an upstream's request belongs to: the connection's owner, or the newest session of its agent.</summary>
    private AgentSession Owner(UpstreamConnection connection, string what)
    {
        if (connection.Scope.Length == 0)
        {
            throw new McpProtocolException($"{what} is not available through a shared connection; configure the server with connection: per_session", McpErrorCode.InvalidRequest);
        }

        var owner = _sessions.Values.Where(s => s.OwnConnections.Values.Contains(connection)).OrderByDescending(s => s.StartedAt).FirstOrDefault();
        return owner ?? throw new McpProtocolException($"{what}: the agent session that owns this connection has ended", McpErrorCode.InvalidRequest);
    }

    private async ValueTask<Permit> DecideUpstreamRequestAsync(UpstreamConnection connection, AgentSession owner, McpOperation operation, string target, CancellationToken cancellationToken)
    {
        var call = new CallContext
        {
            Agent = owner.Agent,
            SessionId = owner.Id,
            Operation = operation,
            Server = connection.Server,
            Target = target,
            AnnotatedClasses = ToolClasses.None,
            ReceivedAt = _time.GetUtcNow(),
        };
        var permit = await _decider.DecideAsync(call, cancellationToken).ConfigureAwait(false);
        if (!permit.Forward)
        {
            throw new McpProtocolException(permit.Message, McpErrorCode.InvalidRequest);
        }

        return permit;
    }

    public ValueTask<CreateMessageResult> OnSamplingAsync(UpstreamConnection connection, CreateMessageRequestParams? request, CancellationToken cancellationToken) =>
        RelayToAgentAsync(connection, McpOperation.Sampling, "sampling", RequestMethods.SamplingCreateMessage, (server, ct) => server.SampleAsync(request!, ct), cancellationToken);

    public ValueTask<ElicitResult> OnElicitationAsync(UpstreamConnection connection, ElicitRequestParams? request, CancellationToken cancellationToken) =>
        RelayToAgentAsync(connection, McpOperation.Elicitation, "elicitation", RequestMethods.ElicitationCreate, (server, ct) => server.ElicitAsync(request!, ct), cancellationToken);

    /// <summary>An upstream's request toward the agent: decided like a call, sent to the owning session, cancellable by a stop.</summary>
    private async ValueTask<TResult> RelayToAgentAsync<TResult>(
        UpstreamConnection connection,
        McpOperation operation,
        string what,
        string method,
        Func<McpServer, CancellationToken, ValueTask<TResult>> send,
        CancellationToken cancellationToken)
    {
        var owner = Owner(connection, what);
        var permit = await DecideUpstreamRequestAsync(connection, owner, operation, method, cancellationToken).ConfigureAwait(false);
        try
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, permit.Cancellation);
            var result = await send(owner.Server, linked.Token).ConfigureAwait(false);
            await permit.CompleteAsync(null, null).ConfigureAwait(false);
            return result;
        }
        catch (Exception ex)
        {
            await permit.CompleteAsync(null, ex).ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask<ListRootsResult> OnRootsAsync(UpstreamConnection connection, ListRootsRequestParams? request, CancellationToken cancellationToken)
    {
        var owner = Owner(connection, "roots");
        return await owner.Server.RequestRootsAsync(request ?? new ListRootsRequestParams(), cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => Pool.DisposeAsync();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Listing from upstream {Server} failed: {Error}")]
    private static partial void LogListFailed(ILogger logger, string server, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Tool name collision: '{Name}' is both {First} and {Second}; the second is hidden")]
    private static partial void LogCollision(ILogger logger, string name, string first, string second);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Upstream {Server} ({Scope}) sent {Method}")]
    private static partial void LogNotification(ILogger logger, string method, string server, string scope);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Relaying {Method} to session {Session} failed: {Error}")]
    private static partial void LogRelayFailed(ILogger logger, string method, string session, string error);
}
