using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Warden.Core.Identity;
using Warden.Gateway;
using Warden.Gateway.Configuration;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Warden.Web.Tests;

/// <summary>
/// A Warden site on a temp folder with the workplace sample as its upstream, an operator, two approvers and
/// agents, and a gateway running in this process on a free port.
/// </summary>
internal sealed class Site : IAsyncDisposable
{
    public const string Operator = "ops";
    public const string Approver = "alice";
    public const string SecondApprover = "bob";

    private readonly Dictionary<string, string> _agentTokens = new(StringComparer.Ordinal);

    private Site(string root) => Root = root;

    public string Root { get; }
    public string ConfigPath => Path.Combine(Root, "warden.yaml");
    public string WorkplaceDir => Path.Combine(Root, "workplace");
    public string OperationsLog => Path.Combine(WorkplaceDir, "operations.log");
    public string OperatorToken { get; private set; } = "";
    public string ApproverToken { get; private set; } = "";
    public string SecondApproverToken { get; private set; } = "";
    public WebApplication? App { get; private set; }
    public string Url => App!.Urls.First().TrimEnd('/');

    public string AgentToken(string agent) => _agentTokens[agent];

    public static async Task<Site> StartAsync(string policy, IReadOnlyList<string> agents, string extraConfig = "")
    {
        var site = new Site(Directory.CreateTempSubdirectory("warden-web-e2e-").FullName);
        Directory.CreateDirectory(Path.Combine(site.Root, "policy"));
        Directory.CreateDirectory(Path.Combine(site.Root, "data"));
        await File.WriteAllTextAsync(Path.Combine(site.Root, "policy", "policy.yaml"), policy);
        await File.WriteAllTextAsync(site.ConfigPath, $"""
            listen: 127.0.0.1:8470
            data_dir: ./data
            store: sqlite
            policy: ./policy/
            servers:
              workplace:
                command: [dotnet, "{Repo.WorkplaceDll}", --data, "{site.WorkplaceDir}", --slow-ms, "0"]
                connection: shared
            {extraConfig}
            """);
        var config = ConfigLoader.Parse(File.ReadAllText(site.ConfigPath), site.ConfigPath, site.Root);
        await using (var store = StoreFactory.Create(config, TimeProvider.System))
        {
            await store.InitializeAsync();
            site.OperatorToken = await AddAsync(store, PrincipalKind.Operator, Operator, []);
            site.ApproverToken = await AddAsync(store, PrincipalKind.Approver, Approver, ["team-leads"]);
            site.SecondApproverToken = await AddAsync(store, PrincipalKind.Approver, SecondApprover, ["team-leads"]);
            foreach (var agent in agents)
            {
                site._agentTokens[agent] = await AddAsync(store, PrincipalKind.Agent, agent, ["assistants"]);
            }
        }

        site.App = GatewayHost.Build(config, new GatewayOptions { Listen = "127.0.0.1:0", LogLevel = LogLevel.Warning });
        await site.App.StartAsync();

        // Upstreams start in the background: wait until the workplace answers.
        await using var warm = await Agents.ConnectAsync(site.Url, site._agentTokens[agents[0]]);
        var last = "";
        var ready = await Wait.UntilAsync(async () =>
        {
            var r = await warm.CallAsync("workplace__slow_operation", new { seconds = 0, steps = 1 });
            last = r.Text();
            return r.IsError != true;
        }, TimeSpan.FromSeconds(90));
        Assert.True(ready, "the workplace upstream did not start: " + last);
        return site;
    }

    private static async Task<string> AddAsync(Core.Storage.IWardenStore store, PrincipalKind kind, string name, string[] groups)
    {
        var token = Tokens.Create(kind);
        Assert.True(await store.AddPrincipalAsync(new Principal(kind, name, groups, DateTimeOffset.UtcNow), Tokens.Hash(token)));
        return token;
    }

    public List<JsonObject> ReadLog()
    {
        if (!File.Exists(OperationsLog))
        {
            return [];
        }

        using var stream = new FileStream(OperationsLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return [.. reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject())];
    }

    public async ValueTask DisposeAsync()
    {
        if (App is not null)
        {
            try
            {
                await App.StopAsync(CancellationToken.None);
                await App.DisposeAsync();
            }
            catch (Exception)
            {
                // Best effort.
            }
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (Exception)
        {
            // A child still exiting may hold a file for a moment; /tmp leftovers are harmless.
        }
    }
}

/// <summary>
/// Debian's Chromium under Playwright: never a downloaded browser. Each browser session gets a fresh user data
/// directory, so no cookie leaks from one test to the next.
/// </summary>
internal sealed class Browser : IAsyncDisposable
{
    public const string Executable = "/usr/bin/chromium";

    private readonly IPlaywright _playwright;
    private readonly List<(IBrowserContext Context, string Dir)> _contexts = [];

    private Browser(IPlaywright playwright) => _playwright = playwright;

    public static async Task<Browser> StartAsync()
    {
        Assert.True(File.Exists(Executable), $"{Executable} is missing: apt-get install -y chromium (.ci/run does)");
        return new Browser(await Playwright.CreateAsync());
    }

    /// <summary>A new browser with its own profile.</summary>
    public async Task<IPage> NewPageAsync()
    {
        var dir = Directory.CreateTempSubdirectory("warden-web-chromium-").FullName;
        var context = await _playwright.Chromium.LaunchPersistentContextAsync(dir, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = Executable,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            ViewportSize = new ViewportSize { Width = 1280, Height = 860 },
            Timeout = 60_000,
        });
        context.SetDefaultTimeout(30_000);
        _contexts.Add((context, dir));
        return context.Pages.Count > 0 ? context.Pages[0] : await context.NewPageAsync();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (context, dir) in _contexts)
        {
            try
            {
                await context.CloseAsync();
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception)
            {
                // Best effort.
            }
        }

        _playwright.Dispose();
    }
}

/// <summary>What a person does in the dashboard.</summary>
internal static class Dashboard
{
    public static async Task SignInAsync(IPage page, string url, string token)
    {
        await page.GotoAsync(url + "/ui/");
        await page.GetByLabel("Operator or approver token").FillAsync(token);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.Locator("#who").Filter(new() { HasTextRegex = new System.Text.RegularExpressions.Regex(@"\((operator|approver)\)") }).WaitForAsync();
    }

    /// <summary>fetch() from inside the page, with the session cookie; returns the status and body.</summary>
    public static async Task<(int Status, string Body)> FetchAsync(IPage page, string method, string path, object? body = null, bool withCsrf = true)
    {
        var result = await page.EvaluateAsync<JsonElement>("""
            async ([method, path, body, withCsrf]) => {
              const s = await (await fetch('/ui/session', { cache: 'no-store' })).json();
              const headers = { 'Content-Type': 'application/json' };
              if (withCsrf) headers[s.csrf_header] = s.csrf;
              const r = await fetch(path, { method, headers, body: body === null ? undefined : JSON.stringify(body), credentials: 'same-origin' });
              return { status: r.status, body: await r.text() };
            }
            """, new object?[] { method, path, body, withCsrf });
        return (result.GetProperty("status").GetInt32(), result.GetProperty("body").GetString() ?? "");
    }

    public static async Task ScreenshotAsync(IPage page, string name)
    {
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Repo.Screenshots, name + ".png"), FullPage = true });
    }
}
