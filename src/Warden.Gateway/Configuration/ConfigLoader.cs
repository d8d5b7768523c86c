using System.Text.RegularExpressions;
using Warden.Core.Text;
using YamlDotNet.RepresentationModel;

namespace Warden.Gateway.Configuration;

/// <summary>Loads <c>warden.yaml</c>, reporting every problem with file, line and column.</summary>
public static partial class ConfigLoader
{
    private static readonly string[] TopFields = ["listen", "data_dir", "store", "audit", "servers", "webhooks", "policy", "tool_separator", "mcp", "approvals"];
    private static readonly string[] ServerFields = ["command", "args", "env", "cwd", "url", "headers", "connection", "prefix", "labels", "connect_timeout", "call_timeout"];

    /// <summary>Reads and validates a config file.</summary>
    /// <exception cref="SourceException">The file is missing or invalid; carries every problem.</exception>
    public static WardenConfig Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new SourceException([new SourceDiagnostic(path, 1, 1, "config file not found", "pass --config PATH, or run 'warden init' to create one")]);
        }

        return Parse(File.ReadAllText(full), path, Path.GetDirectoryName(full)!);
    }

    /// <summary>Parses config text.</summary>
    public static WardenConfig Parse(string text, string file, string baseDirectory)
    {
        var r = new YamlReader(file);
        var root = r.Mapping(r.Parse(text), "warden.yaml", TopFields);
        var config = root is null ? new WardenConfig { BaseDirectory = baseDirectory } : Read(r, root, baseDirectory);
        if (root is null && !r.HasErrors)
        {
            r.Error(null, "warden.yaml must be a mapping");
        }

        if (r.HasErrors)
        {
            throw new SourceException(r.Diagnostics);
        }

        return config;
    }

    private static WardenConfig Read(YamlReader r, YamlMappingNode root, string baseDirectory)
    {
        var listenNode = YamlReader.Get(root, "listen");
        var listen = r.String(listenNode, "listen") ?? "127.0.0.1:8470";
        if (!ListenRegex().IsMatch(listen))
        {
            r.Error(listenNode, $"listen must be host:port, not '{listen}'", "for example 127.0.0.1:8470");
        }

        var sep = r.String(YamlReader.Get(root, "tool_separator"), "tool_separator") ?? "__";
        if (sep.Length == 0 || sep.Contains('/') || sep.Any(char.IsWhiteSpace))
        {
            r.Error(YamlReader.Get(root, "tool_separator"), "tool_separator must be non-empty, without spaces or '/'");
        }

        var servers = new Dictionary<string, ServerConfig>(StringComparer.Ordinal);
        if (r.Mapping(YamlReader.Get(root, "servers"), "servers") is { } serversNode)
        {
            foreach (var (k, v) in serversNode.Children)
            {
                var name = r.String(k, "server name") ?? "";
                if (!NameRegex().IsMatch(name))
                {
                    r.Error(k, $"server name '{name}' must be letters, digits, '-' or '_'", "tool names are shown as server" + sep + "tool");
                    continue;
                }

                if (name.Contains(sep, StringComparison.Ordinal))
                {
                    r.Error(k, $"server name '{name}' contains the tool separator '{sep}'", "rename the server or change tool_separator");
                }

                if (ReadServer(r, name, v) is { } server)
                {
                    servers[name] = server;
                }
            }
        }

        var audit = new AuditConfig();
        if (r.Mapping(YamlReader.Get(root, "audit"), "audit", "durability", "on_failure", "write_timeout", "mask_arguments") is { } a)
        {
            var durability = r.String(YamlReader.Get(a, "durability"), "audit.durability") ?? "process";
            if (durability is not ("process" or "fsync"))
            {
                r.Error(YamlReader.Get(a, "durability"), $"audit.durability must be process or fsync, not '{durability}'");
            }

            var onFailure = r.String(YamlReader.Get(a, "on_failure"), "audit.on_failure") ?? "deny";
            if (onFailure is not ("deny" or "allow"))
            {
                r.Error(YamlReader.Get(a, "on_failure"), $"audit.on_failure must be deny or allow, not '{onFailure}'");
            }

            var writeTimeout = r.Duration(YamlReader.Get(a, "write_timeout"), "audit.write_timeout") ?? TimeSpan.FromSeconds(2);
            if (writeTimeout <= TimeSpan.Zero)
            {
                r.Error(YamlReader.Get(a, "write_timeout"), "audit.write_timeout must be positive");
            }

            var mask = YamlReader.Get(a, "mask_arguments") is { } maskNode ? r.StringList(maskNode, "audit.mask_arguments") : null;
            audit = new AuditConfig { Durability = durability, OnFailure = onFailure, WriteTimeout = writeTimeout, MaskArguments = mask ?? AuditConfig.DefaultMaskArguments };
        }

        var mcp = new McpEndpointConfig();
        if (r.Mapping(YamlReader.Get(root, "mcp"), "mcp", "sessions", "max_request_bytes", "anonymous_agent", "allowed_hosts", "allowed_origins") is { } m)
        {
            var sessions = r.String(YamlReader.Get(m, "sessions"), "mcp.sessions") ?? "stateful";
            if (sessions is not ("stateful" or "stateless"))
            {
                r.Error(YamlReader.Get(m, "sessions"), $"mcp.sessions must be stateful or stateless, not '{sessions}'");
            }

            var max = r.Integer(YamlReader.Get(m, "max_request_bytes"), "mcp.max_request_bytes") ?? mcp.MaxRequestBytes;
            if (max is < 1024 or > 1L << 30)
            {
                r.Error(YamlReader.Get(m, "max_request_bytes"), "mcp.max_request_bytes must be between 1024 and 1073741824");
            }

            mcp = new McpEndpointConfig
            {
                Sessions = sessions,
                MaxRequestBytes = max,
                AnonymousAgent = r.String(YamlReader.Get(m, "anonymous_agent"), "mcp.anonymous_agent"),
                AllowedHosts = r.StringList(YamlReader.Get(m, "allowed_hosts"), "mcp.allowed_hosts"),
                AllowedOrigins = r.StringList(YamlReader.Get(m, "allowed_origins"), "mcp.allowed_origins"),
            };
        }

        var webhooks = new List<WebhookConfig>();
        if (YamlReader.Get(root, "webhooks") is YamlSequenceNode hooks)
        {
            foreach (var h in hooks.Children)
            {
                if (r.Mapping(h, "webhook", "url", "events", "secret_env", "format") is not { } hm)
                {
                    continue;
                }

                var url = r.String(YamlReader.Get(hm, "url"), "webhook.url");
                if (url is null || !Uri.TryCreate(url, UriKind.Absolute, out var u) || (u.Scheme != "http" && u.Scheme != "https"))
                {
                    r.Error(h, "webhook.url must be an absolute http(s) URL");
                }

                webhooks.Add(new WebhookConfig
                {
                    Url = url ?? "",
                    Events = r.StringList(YamlReader.Get(hm, "events"), "webhook.events"),
                    SecretEnv = r.String(YamlReader.Get(hm, "secret_env"), "webhook.secret_env"),
                    Format = r.String(YamlReader.Get(hm, "format"), "webhook.format") ?? "json",
                });
            }
        }
        else if (YamlReader.Get(root, "webhooks") is { } badHooks && badHooks is not YamlScalarNode { Value: null or "" })
        {
            r.Error(badHooks, "webhooks must be a list");
        }

        var approvals = new Approvals.ApprovalOptions();
        if (r.Mapping(YamlReader.Get(root, "approvals"), "approvals", "default_timeout", "default_mode", "max_pending_per_agent", "progress_interval") is { } am)
        {
            var mode = r.String(YamlReader.Get(am, "default_mode"), "approvals.default_mode");
            if (mode is not (null or "hold" or "defer"))
            {
                r.Error(YamlReader.Get(am, "default_mode"), $"approvals.default_mode must be hold or defer, not '{mode}'");
            }

            var maxPending = r.Integer(YamlReader.Get(am, "max_pending_per_agent"), "approvals.max_pending_per_agent");
            if (maxPending is < 1 or > 100_000)
            {
                r.Error(YamlReader.Get(am, "max_pending_per_agent"), "approvals.max_pending_per_agent must be between 1 and 100000");
            }

            approvals = new Approvals.ApprovalOptions
            {
                DefaultTimeout = r.Duration(YamlReader.Get(am, "default_timeout"), "approvals.default_timeout") ?? approvals.DefaultTimeout,
                DefaultMode = mode == "defer" ? Core.Approvals.ApprovalMode.Defer : Core.Approvals.ApprovalMode.Hold,
                MaxPendingPerAgent = (int)Math.Clamp(maxPending ?? approvals.MaxPendingPerAgent, 1, 100_000),
                ProgressInterval = r.Duration(YamlReader.Get(am, "progress_interval"), "approvals.progress_interval") ?? approvals.ProgressInterval,
            };
        }

        var store = r.String(YamlReader.Get(root, "store"), "store") ?? "sqlite";
        if (store != "sqlite" && !store.StartsWith("postgres://", StringComparison.Ordinal) && !store.StartsWith("postgresql://", StringComparison.Ordinal))
        {
            r.Error(YamlReader.Get(root, "store"), $"store must be sqlite or a postgres:// URL, not '{store}'");
        }

        return new WardenConfig
        {
            Listen = listen,
            DataDir = r.String(YamlReader.Get(root, "data_dir"), "data_dir") ?? "./warden-data",
            Store = store,
            Audit = audit,
            Servers = servers,
            Webhooks = webhooks,
            Approvals = approvals,
            Policy = r.String(YamlReader.Get(root, "policy"), "policy"),
            ToolSeparator = sep,
            Mcp = mcp,
            BaseDirectory = baseDirectory,
        };
    }

    private static ServerConfig? ReadServer(YamlReader r, string name, YamlNode node)
    {
        if (r.Mapping(node, $"servers.{name}", ServerFields) is not { } m)
        {
            return null;
        }

        var command = r.StringList(YamlReader.Get(m, "command"), $"servers.{name}.command");
        command.AddRange(r.StringList(YamlReader.Get(m, "args"), $"servers.{name}.args"));
        var url = r.String(YamlReader.Get(m, "url"), $"servers.{name}.url");
        if (command.Count == 0 && url is null)
        {
            r.Error(node, $"server '{name}' needs either command (a stdio child) or url (Streamable HTTP)");
        }
        else if (command.Count > 0 && url is not null)
        {
            r.Error(node, $"server '{name}' has both command and url", "a server is either a stdio child or an HTTP URL");
        }

        if (url is not null && (!Uri.TryCreate(url, UriKind.Absolute, out var u) || (u.Scheme != "http" && u.Scheme != "https")))
        {
            r.Error(YamlReader.Get(m, "url"), $"servers.{name}.url must be an absolute http(s) URL");
        }

        var connectionNode = YamlReader.Get(m, "connection");
        var connection = r.String(connectionNode, $"servers.{name}.connection") switch
        {
            null or "shared" => ConnectionSharing.Shared,
            "per_agent" => ConnectionSharing.PerAgent,
            "per_session" => ConnectionSharing.PerSession,
            var other => Invalid(other),
        };

        ConnectionSharing Invalid(string value)
        {
            r.Error(connectionNode, $"servers.{name}.connection must be shared, per_agent or per_session, not '{value}'");
            return ConnectionSharing.Shared;
        }

        return new ServerConfig
        {
            Name = name,
            Command = command,
            Url = url,
            Env = r.StringMap(YamlReader.Get(m, "env"), $"servers.{name}.env"),
            Headers = r.StringMap(YamlReader.Get(m, "headers"), $"servers.{name}.headers"),
            Cwd = r.String(YamlReader.Get(m, "cwd"), $"servers.{name}.cwd"),
            Connection = connection,
            Labels = r.StringList(YamlReader.Get(m, "labels"), $"servers.{name}.labels"),
            Prefix = r.Bool(YamlReader.Get(m, "prefix"), $"servers.{name}.prefix") ?? true,
            ConnectTimeout = r.Duration(YamlReader.Get(m, "connect_timeout"), $"servers.{name}.connect_timeout") ?? TimeSpan.FromSeconds(30),
            CallTimeout = r.Duration(YamlReader.Get(m, "call_timeout"), $"servers.{name}.call_timeout") ?? TimeSpan.FromMinutes(10),
        };
    }

    /// <summary>Splits <c>host:port</c>; IPv6 hosts in brackets.</summary>
    public static (string Host, int Port) SplitListen(string listen)
    {
        var i = listen.LastIndexOf(':');
        var host = listen[..i].Trim('[', ']');
        return (host, int.Parse(listen[(i + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$")]
    private static partial Regex ListenRegex();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_\-]*$")]
    private static partial Regex NameRegex();
}
