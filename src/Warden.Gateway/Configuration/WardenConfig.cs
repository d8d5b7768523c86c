namespace Warden.Gateway.Configuration;

/// <summary>The contents of <c>warden.yaml</c>: where Warden runs and what it fronts. Immutable once loaded.</summary>
public sealed class WardenConfig
{
    /// <summary>Address the HTTP listener binds, <c>host:port</c>. Loopback unless configured otherwise.</summary>
    public string Listen { get; init; } = "127.0.0.1:8470";

    /// <summary>Folder for the SQLite store and keys; relative paths are relative to the config file.</summary>
    public string DataDir { get; init; } = "./warden-data";

    /// <summary><c>sqlite</c> (default) or a <c>postgres://</c> connection string.</summary>
    public string Store { get; init; } = "sqlite";

    /// <summary>Audit settings.</summary>
    public AuditConfig Audit { get; init; } = new();

    /// <summary>The upstream tool servers, by name.</summary>
    public IReadOnlyDictionary<string, ServerConfig> Servers { get; init; } = new Dictionary<string, ServerConfig>();

    /// <summary>Webhook receivers (approval requests, breaker trips).</summary>
    public IReadOnlyList<WebhookConfig> Webhooks { get; init; } = [];

    /// <summary>Defaults for human approval (timeout, mode, flood cap).</summary>
    public Approvals.ApprovalOptions Approvals { get; init; } = new();

    /// <summary>Policy file or folder; relative to the config file.</summary>
    public string? Policy { get; init; }

    /// <summary>Separator between server and tool in the names agents see.</summary>
    public string ToolSeparator { get; init; } = "__";

    /// <summary>MCP endpoint settings.</summary>
    public McpEndpointConfig Mcp { get; init; } = new();

    /// <summary>The folder the config file was read from; relative paths resolve against it.</summary>
    public string BaseDirectory { get; init; } = Directory.GetCurrentDirectory();

    /// <summary>Resolves a path from the config against <see cref="BaseDirectory"/>.</summary>
    public string Resolve(string path) => Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(BaseDirectory, path));
}

/// <summary>Audit settings.</summary>
public sealed class AuditConfig
{
    /// <summary><c>process</c> (write-ahead log before forwarding) or <c>fsync</c>.</summary>
    public string Durability { get; init; } = "process";

    /// <summary><c>deny</c> (default) or <c>allow</c> when the audit cannot be written.</summary>
    public string OnFailure { get; init; } = "deny";

    /// <summary>How long a call waits for its intent record to become durable before it is refused. Default 2 s.</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Argument keys (any depth, case-insensitive) whose values are stored as keyed digests.</summary>
    public IReadOnlyList<string> MaskArguments { get; init; } = DefaultMaskArguments;

    /// <summary>The default <see cref="MaskArguments"/>.</summary>
    public static IReadOnlyList<string> DefaultMaskArguments => Core.Audit.AuditDigester.DefaultMaskedKeys;
}

/// <summary>How the agent-facing MCP endpoint behaves.</summary>
public sealed class McpEndpointConfig
{
    /// <summary><c>stateful</c> (default: needed to relay notifications and upstream requests) or <c>stateless</c>.</summary>
    public string Sessions { get; init; } = "stateful";

    /// <summary>Largest request body accepted, in bytes.</summary>
    public long MaxRequestBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>
    /// Calls without a credential are made as this agent. Only for conformance testing on loopback:
    /// refused when the listener is not bound to a loopback address.
    /// </summary>
    public string? AnonymousAgent { get; init; }

    /// <summary>Host header values accepted besides loopback names (DNS-rebinding protection).</summary>
    public IReadOnlyList<string> AllowedHosts { get; init; } = [];

    /// <summary>Origins accepted besides loopback origins.</summary>
    public IReadOnlyList<string> AllowedOrigins { get; init; } = [];
}

/// <summary>How an upstream connection is shared between agent sessions.</summary>
public enum ConnectionSharing
{
    /// <summary>One connection for all sessions: cheap; no upstream-to-agent requests; per-client state kept by Warden.</summary>
    Shared,

    /// <summary>One connection per agent.</summary>
    PerAgent,

    /// <summary>One connection per agent session: faithful per-client state and request routing.</summary>
    PerSession,
}

/// <summary>One upstream tool server: a stdio child process or a Streamable HTTP URL.</summary>
public sealed class ServerConfig
{
    /// <summary>The server's configured name, which prefixes its tools.</summary>
    public string Name { get; init; } = "";

    /// <summary>Program and arguments of a stdio child.</summary>
    public IReadOnlyList<string> Command { get; init; } = [];

    /// <summary>Environment given to the child. It inherits nothing else but PATH, HOME and the like.</summary>
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();

    /// <summary>Working directory of the child.</summary>
    public string? Cwd { get; init; }

    /// <summary>URL of a Streamable HTTP server.</summary>
    public string? Url { get; init; }

    /// <summary>Headers sent upstream (credentials for the upstream; never shown to agents).</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    /// <summary>How the connection is shared between agent sessions.</summary>
    public ConnectionSharing Connection { get; init; } = ConnectionSharing.Shared;

    /// <summary>
    /// True (default) to show this server's tools and prompts as <c>server__name</c>. False shows them under
    /// their own names, for a single upstream or clients that call fixed names; collisions are then refused.
    /// </summary>
    public bool Prefix { get; init; } = true;

    /// <summary>Labels data read from this server carries (confidential, personal, ...).</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];

    /// <summary>Time allowed for connecting and initializing.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time a call may take before Warden gives up on it.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>True for a stdio child.</summary>
    public bool IsStdio => Command.Count > 0;
}

/// <summary>A webhook receiver.</summary>
public sealed class WebhookConfig
{
    /// <summary>Where to POST.</summary>
    public string Url { get; init; } = "";

    /// <summary>Events to send (approval.requested, approval.decided, breaker.tripped); empty means all.</summary>
    public IReadOnlyList<string> Events { get; init; } = [];

    /// <summary>Name of the environment variable holding the HMAC secret.</summary>
    public string? SecretEnv { get; init; }

    /// <summary><c>json</c> or <c>slack</c>.</summary>
    public string Format { get; init; } = "json";
}
